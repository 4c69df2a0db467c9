// Package im talks to the Tencent Cloud IM REST API as the app's admin
// account: UserSig generation (tls-sig-api-v2), a REST client, and the
// im.send action kind. The facts used here come from Tencent's REST API
// documentation: https://www.tencentcloud.com/document/product/1047/34620
// (requests, domains), /34919 (openim/sendmsg) and /34348 (error codes).
//
// # Requests
//
// Every request is POST {endpoint}/v4/{service}/{command} with the query
// sdkappid, identifier (the admin), usersig, random (a fresh crypto-random
// uint32 per request) and contenttype=json, and a JSON body. One Client
// holds one keep-alive connection pool and one token bucket: all calls of a
// process together stay under Config.Rate requests per second, with bursts
// of at most a twentieth of that (1 to 10 requests). Waiting for the bucket
// respects the caller's context; the per-request timeout (default 5 s,
// above IM's own 3 s) starts after the wait.
//
// # Failures
//
// Call returns errors classified for the workers' retry policy
// (actions.Permanent / actions.Transient), wrapping an *Error when IM
// answered:
//
//   - network errors, timeouts, HTTP 5xx, 408 and 429 (with Retry-After),
//     and a 200 whose body is not an IM envelope (something in between
//     answered): transient;
//   - 20004, 20005, 60008, 60014, 70169, 70202, 70500, 90992, 90994,
//     90995, 91000 (internal errors and timeouts): transient;
//   - 60007, 60011, 60018, 60019 (rate limits): transient, retry after 1 s;
//   - 70050 (locked out after failed UserSig checks): transient, after 60 s;
//   - 70001, 20002 (UserSig expired or invalid): the cached sig is dropped
//     and the request repeated once at once, inside the same call; if IM
//     rejects the fresh sig too, permanent (the key, app id, admin account
//     or clock is wrong, which no retry fixes);
//   - every other code, documented permanent or not documented at all, and
//     other HTTP statuses: permanent. For unknown codes this is the safer
//     side: IM's dedup only lasts 120 s, so retrying a send that did reach
//     the user can reach them twice, which cannot be undone, while a dead
//     letter can be inspected and replayed.
//
// The usersig never appears in errors or logs: URLs in errors have it
// masked, and it is cut from anything IM echoes back. The secret key is
// used only inside the Signer.
package im
