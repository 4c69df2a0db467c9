// Package imcallback holds the Tencent Cloud IM callback protocol as
// friendflow speaks it: the six friend-relationship commands, the Event
// that one element of a callback becomes (its fields declared once, in the
// field table), the wire bodies and their decoding, the
// Sign/RequestTime check, the query string, and the replies (OK, FAIL and
// the before-callbacks' ResultItem).
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
// The package imports nothing else of friendflow, so rules and actions can
// name commands, events and reply codes without depending on the engine.
package imcallback
