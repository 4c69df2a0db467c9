package imevent

// Field is one field of Event. Fields is the only place an event field is
// declared: internal/genfields writes, from it, the Event struct,
// AppendEventJSON, the wire body, engine/imcallback's mapping from body to
// events and its decodeFast key switches, and rules' expression environment
// and field readers. See docs/fields.md.
type Field struct {
	// Name is Tencent's name: the Event field, its JSON key in callback
	// bodies and queued jobs, and the identifier rule conditions use.
	Name string
	// Type is the Go type in Event and in rule conditions: "string" or "int".
	Type string
	// Wire is the Go type in the callback body when it differs from Type.
	Wire string
	// From says, for each command (by Name in CommandTable) that carries
	// the field, where the decoder reads it. A command missing from From
	// leaves the field zero.
	From map[string]Source
	// Account marks a UserID: the fields that say who an event is about,
	// which log lines show and the rule index prefers as a key.
	Account bool
	// Doc is the field's one-line description, its doc comment in Event.
	Doc string

	// The field's documented domain, when Tencent documents one: rules'
	// lint warns about a condition comparing the field with a value
	// outside it, which can never match. At most one of Values, Ints and
	// Prefix is set; none means any value of Type.

	// Values are the documented values of a string field.
	Values []string
	// Ints are the documented values of an int field.
	Ints []int
	// Prefix starts every documented value of a string field whose values
	// Tencent lists only by example.
	Prefix string
	// Equivalent groups Values that mean the same thing: Tencent sends
	// any spelling of a group, so a condition naming one spelling misses
	// the others.
	Equivalent [][]string
}

// Source is where Decode reads a field of one command's events.
type Source uint8

const (
	// FromQuery is the callback URL's query parameter of the field's name,
	// held in engine/imcallback's Callback (see Field.CallbackField).
	FromQuery Source = iota + 1
	// FromBody is the body's top level, shared by all of a callback's events.
	FromBody
	// FromElem is the element of the command's list (Command.List) that
	// the event is made of.
	FromElem
	// Derived is computed by the decoder (engine/imcallback), not read.
	Derived
)

func (s Source) String() string {
	switch s {
	case FromQuery:
		return "query"
	case FromBody:
		return "body"
	case FromElem:
		return "element"
	case Derived:
		return "derived"
	}
	return "Source(?)"
}

// Fields lists Event's fields in order: the order of the struct, of its
// JSON and of the field docs. What each command carries is Tencent's
// documentation of the callback, the Doc of its row in CommandTable.
var Fields = []Field{
	{Name: "CallbackCommand", Type: "string", From: all(FromQuery), Values: commandNames(), Doc: "The callback's command, such as Sns.CallbackFriendAdd; the body repeats it and must agree."},
	{Name: "SdkAppid", Type: "int", From: all(FromQuery), Doc: "The application's SDKAppID."},
	{Name: "ClientIP", Type: "string", From: all(FromQuery), Doc: "IP address of the client that caused the event."},
	{Name: "OptPlatform", Type: "string", From: all(FromQuery), Doc: "Platform of the client that caused the event, such as RESTAPI or Android."},
	// Only the Prev commands document EventTime; Decode reads it wherever
	// it is and falls back to the request's RequestTime, then to the
	// receive time, so every event has one.
	{Name: "EventTime", Type: "int", Wire: "int64", From: all(FromBody), Doc: "When the event happened, in Unix milliseconds; when the body has none, the callback's RequestTime (whole seconds, sent with callback authentication on), else the time friendflow received it."},
	{Name: "From_Account", Type: "string", Account: true, From: onList(FromElem, "PairList").and(FromBody, prevCmds()...).and(FromBody, followCmds...), Doc: "UserID whose friend list or blocklist changed; for a Prev command, who sends or answers the request; for a Follow command, who follows or unfollows."},
	{Name: "To_Account", Type: "string", Account: true, From: all(FromElem), Doc: "UserID added to or removed from From_Account's list, whom the request or answer is for, or whom From_Account follows or unfollows; never empty."},
	{Name: "Initiator_Account", Type: "string", Account: true, From: on(FromElem, "Sns.CallbackFriendAdd"), Doc: "UserID that started the add."},
	{Name: "ClientCmd", Type: "string", From: on(FromBody, "Sns.CallbackFriendAdd"),
		Values:     []string{"friend_add", "FriendAdd", "friend_response", "FriendResponse"},
		Equivalent: [][]string{{"friend_add", "FriendAdd"}, {"friend_response", "FriendResponse"}},
		Doc:        "friend_add or FriendAdd for a request, friend_response or FriendResponse for an accepted one."},
	{Name: "Admin_Account", Type: "string", Account: true, From: on(FromBody, "Sns.CallbackFriendAdd"), Doc: "The admin account when the add came through the REST API, else empty."},
	{Name: "ForceFlag", Type: "int", From: on(FromBody, "Sns.CallbackFriendAdd"), Ints: []int{0, 1}, Doc: "1 when an admin forced the add, else 0."},
	{Name: "Requester_Account", Type: "string", Account: true, From: on(FromBody, prevCmds()...), Doc: "UserID that issued the friend request."},
	{Name: "Remark", Type: "string", From: on(FromElem, prevCmds()...), Doc: "Remark From_Account gives To_Account."},
	{Name: "GroupName", Type: "string", From: on(FromElem, "Sns.CallbackPrevFriendAdd"), Doc: "Friend group From_Account puts To_Account in."},
	{Name: "AddSource", Type: "string", From: on(FromElem, "Sns.CallbackPrevFriendAdd"), Prefix: "AddSource_Type_", Doc: "Where the request comes from, such as AddSource_Type_Android."},
	{Name: "AddWording", Type: "string", From: on(FromElem, "Sns.CallbackPrevFriendAdd"), Doc: "The request's message."},
	{Name: "AddType", Type: "string", From: on(FromBody, "Sns.CallbackPrevFriendAdd"), Values: []string{"Add_Type_Single", "Add_Type_Both"}, Doc: "Add_Type_Single or Add_Type_Both."},
	{Name: "ForceAddFlags", Type: "int", From: on(FromBody, "Sns.CallbackPrevFriendAdd"), Ints: []int{0, 1}, Doc: "1 when an admin forces the add, else 0."},
	{Name: "TagName", Type: "string", From: on(FromElem, "Sns.CallbackPrevFriendResponse"), Doc: "Friend group From_Account puts To_Account in when accepting."},
	{Name: "ResponseAction", Type: "string", From: on(FromElem, "Sns.CallbackPrevFriendResponse"),
		Values: []string{"Response_Action_AgreeAndAdd", "Response_Action_Agree", "Response_Action_Reject"},
		Doc:    "Response_Action_AgreeAndAdd, Response_Action_Agree or Response_Action_Reject."},
	{Name: "PairIndex", Type: "int", From: all(Derived), Doc: "Position of the event's element in its list, from 0."},
	{Name: "PairCount", Type: "int", From: all(Derived), Doc: "Number of elements in the list: the callback's number of events."},
}

// sources builds a row's From.
type sources map[string]Source

// all is s for every command.
func all(s Source) sources { return on(s, commandNames()...) }

// onList is s for every command whose events are elements of list.
func onList(s Source, list string) sources {
	m := sources{}
	for _, c := range CommandTable {
		if c.List == list {
			m[c.Name] = s
		}
	}
	return m
}

// commandNames are the names of CommandTable, in order. The table's rows
// name commands by string, not by the generated constants, so that the
// package builds while its generated file is stale (genfields imports it).
func commandNames() []string {
	names := make([]string, len(CommandTable))
	for i, c := range CommandTable {
		names[i] = c.Name
	}
	return names
}

// followCmds are the follow callbacks, whose body's From_Account is the
// follower of every element.
var followCmds = []string{"Follow.CallbackAfterFollowAdd", "Follow.CallbackAfterFollowDelete"}

// prevCmds are the before-callbacks' names.
func prevCmds() []string {
	var names []string
	for _, c := range CommandTable {
		if c.Prev {
			names = append(names, c.Name)
		}
	}
	return names
}

// on is s for cmds.
func on(s Source, cmds ...string) sources { return sources{}.and(s, cmds...) }

// and adds s for cmds.
func (m sources) and(s Source, cmds ...string) sources {
	for _, c := range cmds {
		m[c] = s
	}
	return m
}

// Carries reports whether cmd's events carry the field.
func (f *Field) Carries(cmd string) bool { return f.From[cmd] != 0 }

// CallbackField is the field of engine/imcallback's Callback that holds a FromQuery field: the
// same name, but Command for CallbackCommand.
func (f *Field) CallbackField() string {
	if f.Name == "CallbackCommand" {
		return "Command"
	}
	return f.Name
}

// AccountFields are the names of the fields that hold a UserID (Account),
// in table order.
func AccountFields() []string {
	var names []string
	for _, f := range Fields {
		if f.Account {
			names = append(names, f.Name)
		}
	}
	return names
}
