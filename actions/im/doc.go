// Package im talks to the Tencent Cloud IM REST API as the app's admin
// account: UserSig generation (tls-sig-api-v2), a REST client, and the IM
// action kinds: im.send (openim/sendmsg), im.batch_send
// (openim/batchsendmsg), im.add_to_group
// (group_open_http_svc/add_group_member), im.friend_update
// (sns/friend_update), im.friend_add (sns/friend_add), im.friend_delete
// (sns/friend_delete) and im.blacklist_add (sns/black_list_add). The
// facts used here come from Tencent's REST API
// documentation: https://www.tencentcloud.com/document/product/1047/34620
// (requests, domains), /34919 (openim/sendmsg), /34920 (batchsendmsg),
// /34921 (add_group_member), /34904 (friend_update), /34902 (friend_add),
// /34905 (friend_delete), https://cloud.tencent.com/document/product/269/3718
// (black_list_add) and /34348 (error codes).
//
// # Requests
//
// Every request is POST {endpoint}/v4/{service}/{command} with the query
// sdkappid, identifier (the admin), usersig, random (a fresh crypto-random
// uint32 per request) and contenttype=json, and a JSON body. One Client
// holds one keep-alive connection pool and a token bucket per REST API,
// as Tencent counts them: each API stays under its own rate (Config.Rate,
// or Config.APIRates for one API), with bursts of at most a twentieth of
// it (1 to 10 requests), so a burst of one API never holds up another.
// openim/batchsendmsg also keeps to its recipients per minute. Waiting for
// a bucket respects the caller's context; the per-request timeout
// (default 5 s, above IM's own 3 s) starts after the wait.
//
// # Lists
//
// The list kinds split their lists into requests as large as the API
// takes (500 recipients, 100 members, 1000 friends), send every one of
// them whatever became of the others, and keep each account's outcome its
// own: a request refused as a whole for one account (90012 for a batch
// whose every recipient failed, 10019 for a member that does not exist)
// is narrowed to the accounts at fault; accounts that failed transiently
// are retried alone (actions.WithRemaining, which the queue stores, so no
// later attempt repeats work that took effect); accounts that failed for
// good go to a dead letter of their own naming each with its code
// (actions.WithAbandoned).
//
// # Failures
//
// Call returns errors classified for the workers' retry policy
// (actions.Permanent / actions.Transient), wrapping an *Error when IM
// answered. Network errors, timeouts, HTTP 5xx, 408 and 429 (with
// Retry-After), and a 200 whose body is not an IM envelope (something in
// between answered) are transient; other HTTP statuses permanent. An IM
// error code is classified by one table, codeTable (CodeTable renders it
// for docs/actions.md), each code with its class and the page documenting
// it: transient (with its wait), rate-limited (retried after 1 s, counted
// as rate_limited), re-sign (70001, 20002: the cached sig is dropped and
// the request repeated once at once, inside the same call; if IM rejects
// the fresh sig too, permanent), per-account permanent, whole-request
// permanent. A code the table does not hold is whole-request permanent:
// retrying a send that did reach the user can reach them twice, which
// cannot be undone, while a dead letter can be inspected and replayed.
//
// The usersig never appears in errors or logs: URLs in errors have it
// masked, and it is cut from anything IM echoes back. The secret key is
// used only inside the Signer.
package im
