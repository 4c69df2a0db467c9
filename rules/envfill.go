package rules

// fillEnv writes the event into m, a map that Env built for an earlier
// event: the same keys, so every write is an update and nothing grows.
// Match keeps one such map per concurrent caller instead of building a new
// one per event, which halves the garbage of a match. It must list exactly
// the keys of Env; TestFillEnvMatchesEnv holds it to that.
func (e *Event) fillEnv(m map[string]any) {
	m["CallbackCommand"] = e.CallbackCommand
	m["SdkAppid"] = e.SdkAppid
	m["ClientIP"] = e.ClientIP
	m["OptPlatform"] = e.OptPlatform
	m["EventTime"] = e.EventTime
	m["From_Account"] = e.From_Account
	m["To_Account"] = e.To_Account
	m["Initiator_Account"] = e.Initiator_Account
	m["ClientCmd"] = e.ClientCmd
	m["Admin_Account"] = e.Admin_Account
	m["ForceFlag"] = e.ForceFlag
	m["Requester_Account"] = e.Requester_Account
	m["Remark"] = e.Remark
	m["GroupName"] = e.GroupName
	m["AddSource"] = e.AddSource
	m["AddWording"] = e.AddWording
	m["AddType"] = e.AddType
	m["ForceAddFlags"] = e.ForceAddFlags
	m["TagName"] = e.TagName
	m["ResponseAction"] = e.ResponseAction
	m["PairIndex"] = e.PairIndex
	m["PairCount"] = e.PairCount
}
