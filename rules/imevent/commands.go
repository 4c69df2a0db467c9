package imevent

// Command is one callback command friendflow turns into events. Any other
// CallbackCommand is answered OK and ignored by the receiver.
type Command struct {
	// Name is Tencent's CallbackCommand, such as Sns.CallbackFriendAdd.
	Name string
	// Const is the Go constant generated for Name, such as CmdFriendAdd.
	Const string
	// List is the body's array holding the command's events, one event
	// per element.
	List string
	// Scalar, when set, says List's elements are not objects but plain
	// values, each the value of the field named Scalar (read FromElem,
	// the only field an element has): Follow.CallbackAfterFollowDelete's
	// To_Account is an array of strings. Empty means objects.
	Scalar string
	// Prev marks a before-callback: IM waits for its reply, whose
	// ResultItem allows or denies each target.
	Prev bool
	// Doc is Tencent's page for the command.
	Doc string
}

// CommandTable lists the commands in a stable order: the order of Commands,
// of CommandIndex and of the docs. Each row is Tencent's documentation of
// the callback (Doc); the list of callback commands is
// https://www.tencentcloud.com/document/product/1047/34355.
var CommandTable = []Command{
	{Name: "Sns.CallbackFriendAdd", Const: "CmdFriendAdd", List: "PairList",
		Doc: "https://www.tencentcloud.com/document/product/1047/34359"},
	{Name: "Sns.CallbackFriendDelete", Const: "CmdFriendDelete", List: "PairList",
		Doc: "https://www.tencentcloud.com/document/product/1047/34360"},
	{Name: "Sns.CallbackBlackListAdd", Const: "CmdBlackListAdd", List: "PairList",
		Doc: "https://www.tencentcloud.com/document/product/1047/34361"},
	{Name: "Sns.CallbackBlackListDelete", Const: "CmdBlackListDelete", List: "PairList",
		Doc: "https://www.tencentcloud.com/document/product/1047/34362"},
	{Name: "Sns.CallbackPrevFriendAdd", Const: "CmdPrevFriendAdd", List: "FriendItem", Prev: true,
		Doc: "https://www.tencentcloud.com/document/product/1047/43468"},
	{Name: "Sns.CallbackPrevFriendResponse", Const: "CmdPrevFriendResponse", List: "ResponseFriendItem", Prev: true,
		Doc: "https://www.tencentcloud.com/document/product/1047/43467"},
	{Name: "Follow.CallbackAfterFollowAdd", Const: "CmdFollowAdd", List: "FollowList",
		Doc: "https://trtc.io/document/70355"},
	{Name: "Follow.CallbackAfterFollowDelete", Const: "CmdFollowDelete", List: "To_Account", Scalar: "To_Account",
		Doc: "https://trtc.io/document/70356"},
}
