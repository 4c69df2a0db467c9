package imcallback

// The six friend-relationship callbacks friendflow understands. Any other
// CallbackCommand is answered OK and ignored by the receiver.
const (
	CmdFriendAdd          = "Sns.CallbackFriendAdd"
	CmdFriendDelete       = "Sns.CallbackFriendDelete"
	CmdBlackListAdd       = "Sns.CallbackBlackListAdd"
	CmdBlackListDelete    = "Sns.CallbackBlackListDelete"
	CmdPrevFriendAdd      = "Sns.CallbackPrevFriendAdd"
	CmdPrevFriendResponse = "Sns.CallbackPrevFriendResponse"
)

// Commands lists the supported commands in a stable order (docs, validation).
var Commands = []string{
	CmdFriendAdd, CmdFriendDelete, CmdBlackListAdd, CmdBlackListDelete,
	CmdPrevFriendAdd, CmdPrevFriendResponse,
}

// IsCommand reports whether cmd is one of the supported commands.
func IsCommand(cmd string) bool {
	for _, c := range Commands {
		if c == cmd {
			return true
		}
	}
	return false
}

// IsPrev reports whether cmd is a before-callback whose reply decides
// allow/deny per target.
func IsPrev(cmd string) bool {
	return cmd == CmdPrevFriendAdd || cmd == CmdPrevFriendResponse
}

// Event is one friend relationship change: one element of a callback's
// PairList, FriendItem or ResponseFriendItem together with the callback's
// shared fields. Field names are Tencent's own, because operators write
// rule conditions against them. Fields a callback does not carry are zero.
type Event struct {
	CallbackCommand string `json:"CallbackCommand"`
	SdkAppid        int    `json:"SdkAppid"`
	ClientIP        string `json:"ClientIP"`
	OptPlatform     string `json:"OptPlatform"`
	EventTime       int    `json:"EventTime"`

	From_Account string `json:"From_Account"`
	To_Account   string `json:"To_Account"`

	Initiator_Account string `json:"Initiator_Account"`
	ClientCmd         string `json:"ClientCmd"`
	Admin_Account     string `json:"Admin_Account"`
	ForceFlag         int    `json:"ForceFlag"`

	Requester_Account string `json:"Requester_Account"`
	Remark            string `json:"Remark"`
	GroupName         string `json:"GroupName"`
	AddSource         string `json:"AddSource"`
	AddWording        string `json:"AddWording"`
	AddType           string `json:"AddType"`
	ForceAddFlags     int    `json:"ForceAddFlags"`

	TagName        string `json:"TagName"`
	ResponseAction string `json:"ResponseAction"`

	PairIndex int `json:"PairIndex"`
	PairCount int `json:"PairCount"`
}
