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
