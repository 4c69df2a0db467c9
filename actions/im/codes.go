package im

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Class is what an IM error code means for the request that got it, and so
// what friendflow does next.
type Class int

const (
	// ClassRequest: the request as a whole cannot succeed (malformed,
	// misconfigured, refused); repeating it gets the same answer.
	ClassRequest Class = iota
	// ClassSuccess: done.
	ClassSuccess
	// ClassTransient: IM's own trouble; the same request may succeed
	// later, after Code.Wait when it is set.
	ClassTransient
	// ClassRateLimited: a frequency limit; retried after Code.Wait, and
	// counted as rate_limited in friendflow_im_requests_total.
	ClassRateLimited
	// ClassResign: the admin UserSig was refused; a fresh one may cure it.
	ClassResign
	// ClassAccount: an account named in the request is at fault (does not
	// exist, cannot take part); the other accounts can still succeed, so a
	// request that failed with it as a whole is narrowed to the accounts
	// at fault.
	ClassAccount
)

var classNames = [...]string{
	ClassRequest:     "whole-request permanent",
	ClassSuccess:     "success",
	ClassTransient:   "transient",
	ClassRateLimited: "rate-limited",
	ClassResign:      "re-sign",
	ClassAccount:     "per-account permanent",
}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Code is one IM error code as friendflow reads it.
type Code struct {
	Code    int
	Class   Class
	Wait    time.Duration // the least wait before a retry (transient, rate-limited)
	Meaning string
	Source  string // the official page that documents it
}

// Pages the codes are documented on.
const (
	srcErrCodes  = "https://cloud.tencent.com/document/product/269/1671"      // error codes
	srcSendMsg   = "https://cloud.tencent.com/document/product/269/2282"      // openim/sendmsg
	srcBatchSend = "https://cloud.tencent.com/document/product/269/1612"      // openim/batchsendmsg
	srcGroupAdd  = "https://trtc.io/document/34921"                           // add_group_member
	srcFriendDel = "https://cloud.tencent.com/document/product/269/1644"      // friend_delete: the sns codes
	srcFriendAdd = "https://trtc.io/document/34902"                           // friend_add: 30008
	srcFriendUpd = "https://www.tencentcloud.com/document/product/1047/34904" // friend_update
	srcBlackAdd  = "https://cloud.tencent.com/document/product/269/3718"      // black_list_add
	srcPortrait  = "https://www.tencentcloud.com/document/product/1047/34917" // portrait_get
)

// Waits of the retry hints.
const (
	rateLimitBackoff = time.Second // the API's limits are per second
	sigLockoutWait   = time.Minute // 70050: too many bad sigs, wait a minute
)

// codeTable is every error code friendflow's IM calls can meet, as the
// pages above document them. Tencent publishes no transient/permanent
// table: a code is transient when its page says to try again ("请重试",
// "稍后重试"), rate-limited when it names a frequency limit, and per
// account when its meaning is about one named account. Codes not listed
// are whole-request permanent (see classOf).
var codeTable = []Code{
	{0, ClassSuccess, 0, "OK", srcErrCodes},

	{20001, ClassRequest, 0, "illegal request packet", srcErrCodes},
	{20002, ClassResign, 0, "UserSig or A2 invalid", srcErrCodes},
	{20003, ClassAccount, 0, "sender or receiver UserID invalid or not imported", srcErrCodes},
	{20004, ClassTransient, 0, "network error", srcErrCodes},
	{20005, ClassTransient, 0, "server internal error", srcErrCodes},
	{20006, ClassRequest, 0, "blocked by the app's before-send callback", srcErrCodes},
	{20007, ClassAccount, 0, "the sender is on the receiver's blocklist", srcErrCodes},
	{20009, ClassAccount, 0, "friendship check failed (only when the console requires friendship)", srcErrCodes},
	{20010, ClassAccount, 0, "friendship check failed (only when the console requires friendship)", srcErrCodes},
	{20011, ClassAccount, 0, "friendship check failed (only when the console requires friendship)", srcErrCodes},
	{20012, ClassRequest, 0, "the sender is muted", srcErrCodes},

	{10002, ClassTransient, 0, "server internal error, retry", srcGroupAdd},
	{10003, ClassRequest, 0, "invalid command word", srcGroupAdd},
	{10004, ClassRequest, 0, "invalid parameter", srcGroupAdd},
	{10005, ClassRequest, 0, "too many accounts in one request", srcGroupAdd},
	{10006, ClassRateLimited, rateLimitBackoff, "operation frequency limit, lower the call rate", srcErrCodes},
	{10007, ClassRequest, 0, "no permission (e.g. an AVChatRoom takes no added members)", srcGroupAdd},
	{10010, ClassRequest, 0, "group does not exist or was dismissed", srcGroupAdd},
	{10014, ClassRequest, 0, "group is full", srcGroupAdd},
	{10015, ClassRequest, 0, "invalid group ID", srcGroupAdd},
	{10016, ClassRequest, 0, "refused by the app's own callback", srcGroupAdd},
	{10019, ClassAccount, 0, "a requested UserID does not exist (check every Member_Account)", srcGroupAdd},
	{10026, ClassRequest, 0, "command disabled for this SDKAppID", srcGroupAdd},
	{10037, ClassAccount, 0, "the invitee joined too many groups", srcGroupAdd},

	{30001, ClassRequest, 0, "request parameter error", srcFriendDel},
	{30002, ClassRequest, 0, "SDKAppID does not match", srcFriendDel},
	{30003, ClassAccount, 0, "account does not exist", srcFriendDel},
	{30004, ClassRequest, 0, "needs an App admin", srcFriendDel},
	{30006, ClassTransient, 0, "server internal error, retry", srcFriendDel},
	{30007, ClassTransient, 0, "network timeout, retry later", srcFriendDel},
	{30008, ClassTransient, 0, "concurrent writes to one user's friends conflicted", srcFriendAdd},
	{30010, ClassAccount, 0, "friend limit reached (3000 friends)", srcFriendAdd},
	{30013, ClassAccount, 0, "blocklist full (1000 per user)", srcBlackAdd},
	{30014, ClassAccount, 0, "friend limit reached (3000 friends)", srcFriendAdd},
	{30515, ClassAccount, 0, "a blocklist stands between the two accounts", srcFriendAdd},
	{30516, ClassAccount, 0, "the account refuses all friend requests", srcFriendAdd},
	{30525, ClassAccount, 0, "a blocklist stands between the two accounts", srcFriendAdd},
	{30539, ClassSuccess, 0, "friend request sent, awaiting the other side's confirmation", srcFriendAdd},
	{30540, ClassAccount, 0, "friend request refused by anti-spam", srcFriendAdd},
	{31704, ClassSuccess, 0, "not friends: already gone", srcFriendDel},
	{31707, ClassTransient, time.Minute, "friend deletion hit the security policy (too frequent)", srcFriendDel},

	{40001, ClassRequest, 0, "profile request parameter error", srcPortrait},
	{40002, ClassRequest, 0, "no To_Account given", srcPortrait},
	{40003, ClassAccount, 0, "requested account does not exist", srcPortrait},
	{40004, ClassRequest, 0, "needs an App admin", srcPortrait},
	{40006, ClassTransient, 0, "profile server internal error, retry later", srcPortrait},
	{40007, ClassRequest, 0, "no read permission on a profile field (console field permissions)", srcPortrait},
	{40009, ClassRequest, 0, "profile tag does not exist", srcPortrait},

	{60002, ClassRequest, 0, "HTTP, URL or JSON format problem", srcErrCodes},
	{60003, ClassRequest, 0, "HTTP, URL or JSON format problem", srcErrCodes},
	{60004, ClassRequest, 0, "UserID or UserSig in the URL wrong", srcErrCodes},
	{60005, ClassRequest, 0, "UserID or UserSig in the URL wrong", srcErrCodes},
	{60006, ClassRequest, 0, "SDKAppID invalid or disabled, request disabled, or package expired", srcErrCodes},
	{60007, ClassRateLimited, rateLimitBackoff, "rate limit (REST)", srcErrCodes},
	{60008, ClassTransient, 0, "service timeout or malformed HTTP request", srcErrCodes},
	{60009, ClassRequest, 0, "HTTP, URL or JSON format problem", srcErrCodes},
	{60010, ClassRequest, 0, "needs an App admin", srcErrCodes},
	{60011, ClassRateLimited, rateLimitBackoff, "rate limit (per SDKAppID)", srcErrCodes},
	{60012, ClassRequest, 0, "HTTP, URL or JSON format problem", srcErrCodes},
	{60013, ClassRequest, 0, "HTTP, URL or JSON format problem", srcErrCodes},
	{60014, ClassTransient, 0, "account exchange timeout", srcErrCodes},
	{60015, ClassRequest, 0, "HTTP, URL or JSON format problem", srcErrCodes},
	{60016, ClassRequest, 0, "SDKAppID invalid or disabled, request disabled, or package expired", srcErrCodes},
	{60017, ClassRequest, 0, "SDKAppID invalid or disabled, request disabled, or package expired", srcErrCodes},
	{60018, ClassRateLimited, rateLimitBackoff, "rate limit (too frequent)", srcErrCodes},
	{60019, ClassRateLimited, rateLimitBackoff, "rate limit (too frequent)", srcErrCodes},
	{60020, ClassRequest, 0, "SDKAppID invalid or disabled, request disabled, or package expired", srcErrCodes},
	{60021, ClassRequest, 0, "caller IP not allowed", srcErrCodes},

	{70001, ClassResign, 0, "UserSig expired", srcErrCodes},
	{70002, ClassRequest, 0, "UserSig empty or invalid, wrong key, identifier or SDKAppID mismatch, or app not found", srcErrCodes},
	{70003, ClassRequest, 0, "UserSig empty or invalid, wrong key, identifier or SDKAppID mismatch, or app not found", srcErrCodes},
	{70005, ClassRequest, 0, "UserSig empty or invalid, wrong key, identifier or SDKAppID mismatch, or app not found", srcErrCodes},
	{70009, ClassRequest, 0, "UserSig empty or invalid, wrong key, identifier or SDKAppID mismatch, or app not found", srcErrCodes},
	{70013, ClassRequest, 0, "UserSig empty or invalid, wrong key, identifier or SDKAppID mismatch, or app not found", srcErrCodes},
	{70014, ClassRequest, 0, "UserSig empty or invalid, wrong key, identifier or SDKAppID mismatch, or app not found", srcErrCodes},
	{70016, ClassRequest, 0, "UserSig empty or invalid, wrong key, identifier or SDKAppID mismatch, or app not found", srcErrCodes},
	{70020, ClassRequest, 0, "UserSig empty or invalid, wrong key, identifier or SDKAppID mismatch, or app not found", srcErrCodes},
	{70050, ClassTransient, sigLockoutWait, "too many failed UserSig checks: wait a minute", srcErrCodes},
	{70107, ClassAccount, 0, "account does not exist", srcBatchSend},
	{70169, ClassTransient, 0, "internal timeout or error", srcErrCodes},
	{70202, ClassTransient, 0, "internal timeout or error", srcErrCodes},
	{70403, ClassRequest, 0, "needs an App admin", srcErrCodes},
	{70500, ClassTransient, 0, "internal error", srcErrCodes},

	{80001, ClassRequest, 0, "content security hit", srcErrCodes},
	{80002, ClassRequest, 0, "body longer than 8 KB", srcErrCodes},
	{80003, ClassRequest, 0, "before-send callback failed or timed out, and the policy blocks", srcErrCodes},

	{90001, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90002, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90003, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90004, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90005, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90006, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90007, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90008, ClassRequest, 0, "From_Account missing or does not exist", srcSendMsg},
	{90009, ClassRequest, 0, "needs an App admin", srcSendMsg},
	{90010, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90011, ClassRequest, 0, "more than 500 recipients", srcBatchSend},
	{90012, ClassAccount, 0, "To_Account not registered (batchsendmsg: every recipient failed)", srcBatchSend},
	{90026, ClassRequest, 0, "MsgLifeTime longer than 7 days", srcSendMsg},
	{90031, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90044, ClassRequest, 0, "malformed JSON or request field", srcSendMsg},
	{90048, ClassAccount, 0, "account does not exist", srcSendMsg},
	{90055, ClassRequest, 0, "body longer than 8 KB", srcErrCodes},
	{90992, ClassTransient, 0, "internal error (persistent: the app's callback server may not answer)", srcErrCodes},
	{90994, ClassTransient, 0, "internal error", srcErrCodes},
	{90995, ClassTransient, 0, "internal error", srcErrCodes},
	{91000, ClassTransient, 0, "internal error", srcErrCodes},
	{93000, ClassRequest, 0, "body longer than 8 KB", srcErrCodes},
}

// codes indexes codeTable.
var codes = func() map[int]Code {
	m := make(map[int]Code, len(codeTable))
	for _, c := range codeTable {
		if _, dup := m[c.Code]; dup {
			panic(fmt.Sprintf("im: code %d twice in codeTable", c.Code))
		}
		m[c.Code] = c
	}
	return m
}()

// Lookup returns the table's entry for code. A code the table does not
// hold is whole-request permanent: a retried send that did reach the user
// would reach them again, and a message sent twice cannot be taken back,
// while a dead letter can be inspected and replayed. Codes 120001 to
// 130000 are the app's own C2C callback's, whole-request permanent too.
func Lookup(code int) (Code, bool) {
	c, ok := codes[code]
	if !ok {
		c = Code{Code: code, Class: ClassRequest}
	}
	return c, ok
}

// Codes returns the classification table, in code order.
func Codes() []Code {
	rows := append([]Code(nil), codeTable...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Code < rows[j].Code })
	return rows
}

// classOf is the class of code.
func classOf(code int) Class {
	c, _ := Lookup(code)
	return c.Class
}

// CodeTable renders the classification table as Markdown, for the
// documentation (docs/actions.md, kept equal by a test).
func CodeTable() string {
	var b strings.Builder
	b.WriteString("| code | class | wait | meaning | source |\n| --- | --- | --- | --- | --- |\n")
	for _, c := range Codes() {
		wait := ""
		if c.Wait > 0 {
			wait = c.Wait.String()
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", c.Code, c.Class, wait, c.Meaning, c.Source)
	}
	return b.String()
}
