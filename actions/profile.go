package actions

import (
	"context"
	"time"
)

// Profile is one account's IM profile as rules see it through profile()
// (v4/profile/portrait_get, https://www.tencentcloud.com/document/product/1047/34917).
// A field the account has not set, or set empty, is its zero value, and
// rules see it as nil, so that `profile(A).Nick ?? A` falls back.
type Profile struct {
	Nick          string            // Tag_Profile_IM_Nick
	FaceUrl       string            // Tag_Profile_IM_Image
	Gender        string            // Tag_Profile_IM_Gender: Gender_Type_Unknown, _Female, _Male
	Language      int               // Tag_Profile_IM_Language
	Location      string            // Tag_Profile_IM_Location
	SelfSignature string            // Tag_Profile_IM_SelfSignature
	Custom        map[string]string // Tag_Profile_Custom_<key>, by <key>

	value map[string]any // Value, made once by Frozen
}

// Frozen returns p with its Value made once and shared by every copy: a
// cache hands the same profile to many jobs, and expressions never change
// a map. Do not change the fields of a frozen profile.
func (p Profile) Frozen() Profile {
	p.value = nil
	p.value = p.Value()
	return p
}

// ProfileFields are the fields of Profile that profile() gives, in the
// order the documentation lists them.
var ProfileFields = []string{"Nick", "FaceUrl", "Gender", "Language", "Location", "SelfSignature", "Custom"}

// Value returns the profile as profile() gives it to expressions: a map
// holding the fields that are set, and Custom, always a map (so that
// profile(A).Custom.Key is nil, not an error, when the key is not set).
func (p Profile) Value() map[string]any {
	if p.value != nil {
		return p.value
	}
	m := make(map[string]any, 8)
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("Nick", p.Nick)
	put("FaceUrl", p.FaceUrl)
	put("Gender", p.Gender)
	put("Location", p.Location)
	put("SelfSignature", p.SelfSignature)
	if p.Language != 0 {
		m["Language"] = p.Language
	}
	custom := make(map[string]any, len(p.Custom))
	for k, v := range p.Custom {
		if v != "" {
			custom[k] = v
		}
	}
	m["Custom"] = custom
	return m
}

// ProfileSource reads IM profiles for jobs when they run. actions/im's
// Profiles implements it against portrait_get, batched and cached.
type ProfileSource interface {
	// Profiles returns the profiles of accounts with the custom fields
	// named (without Tag_Profile_Custom_). An account without a profile
	// is absent from the map, or has a zero Profile. The error is
	// classified like an action's (Permanent, Transient).
	Profiles(ctx context.Context, accounts, custom []string) (map[string]Profile, error)
	// Prefetch asks for profiles that a job will soon want, without
	// waiting for them, so that they share requests. It returns 0 when
	// all are cached, else about how long until they will be.
	Prefetch(accounts, custom []string) (wait time.Duration)
}

// ProfilesParam is the parameter a rendered job carries when a template of
// its action calls profile(): the accounts and custom fields the templates
// want, {"accounts": [...], "custom": [...]}. The queue resolves such a
// job's templates when it runs, and drops this parameter, before the
// kind's Spec.Check; no kind declares a parameter of this name.
const ProfilesParam = "$profiles"
