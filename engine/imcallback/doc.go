// Package imcallback holds the Tencent Cloud IM callback protocol on the
// wire as friendflow speaks it: the wire bodies and their decoding into
// rules/imevent's Events (the body and its mapping generated from imevent's
// command and field tables), the Sign/RequestTime check, the query string,
// and the replies (OK, FAIL and the before-callbacks' ResultItem).
//
// Receiver is the http.Handler Tencent posts to. It checks everything that
// can be checked before any work is accepted, decodes the body into a
// Callback and hands it to a Handler, whose Reply it writes back. The
// protocol is described in Tencent's documentation: the webhook overview
// (https://www.tencentcloud.com/document/product/1047/34354), the list of
// callback commands (https://www.tencentcloud.com/document/product/1047/34355)
// and one page per friend callback, such as
// https://www.tencentcloud.com/document/product/1047/34359 for
// Sns.CallbackFriendAdd.
//
// The vocabulary (commands, Event, fields) is rules/imevent's, one floor
// down, so rules name it without depending on the engine.
package imcallback
