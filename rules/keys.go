package rules

import (
	"fmt"

	"github.com/friendflow/friendflow/actions"
)

// key declares one key of a mapping in a rule file: its name, whether it
// is required, what it means and what its value may be. The parser's lists
// of known keys and the rule files' JSON Schema (Schema) both come from
// these tables, so a key is spelled, and documented, once.
type key struct {
	name     string
	required bool
	doc      string
	value    func(b *schemaBuilder) jsonSchema // the value's schema, without the doc
}

// The keys of each mapping of a rule file.
var (
	fileKeyDecl = []key{
		{name: "rules", required: true, value: listOf("rule"),
			doc: "The rules of this file. Rule names are unique across all files; all rules whose on covers the command and whose when is true fire, in file order (files in name order). `rules: []` is a file without rules."},
		{name: "lists", value: nullableListOf("list"),
			doc: "Operator-managed lists the rules of any file may use as X in list(\"NAME\"). Members are added and removed at run time (friendflow lists, the admin API, the console), never here."},
		{name: "counters", value: nullableListOf("counter"),
			doc: "Counters that rules read with count(NAME, KEY): each counts the events of its commands by a key over a sliding window, shared by every replica. Names are unique across all files."},
	}
	listKeyDecl = []key{
		{name: "name", required: true, value: func(*schemaBuilder) jsonSchema {
			return jsonSchema{"type": "string", "pattern": listNameRE.String()}
		}, doc: "The list's name, unique across all rule files: 1 to 64 of A-Z, a-z, 0-9, _ and -."},
		{name: "description", value: scalar, doc: "What the list is for, shown by friendflow lists and the console."},
	}
	counterKeyDecl = []key{
		{name: "name", required: true, value: nonEmptyScalar,
			doc: "The counter's name, unique across all rule files, read with count(NAME, KEY): a letter, then letters, digits, '_' or '-' (64 at most)."},
		{name: "on", value: ref("on"),
			doc: "The callback command, or a list of them, whose events the counter counts, before any rule sees them. Default: " + defaultCommand + "."},
		{name: "key", required: true, value: stringExpression,
			doc: "An expr expression giving the key an event is counted under, a string, such as From_Account."},
		{name: "window", required: true, value: ref("duration"),
			doc: "The sliding window: count(NAME, KEY) is the number of the key's events inside it, this event included. 1s to 8760h."},
	}
	ruleKeyDecl = []key{
		{name: "name", required: true, value: nonEmptyScalar,
			doc: "The rule's name, unique across all rule files; logs, metrics, job ids and dead letters name the rule by it."},
		{name: "description", value: scalar, doc: "What the rule is for, for the people who read it."},
		{name: "on", value: ref("on"),
			doc: "The callback command, or a list of them, the rule applies to. Default: " + defaultCommand + "."},
		{name: "when", value: expression,
			doc: "An expr condition over the event's fields (https://expr-lang.org/docs/language-definition), compiled and type-checked at load; the rule fires when it is true. Default: always."},
		{name: "enabled", value: boolean, doc: "false keeps the rule loaded and tested, but off. Default: true."},
		{name: "shadow", value: boolean, doc: "true evaluates the rule, logs and counts its matches, but runs no action. Default: false."},
		{name: "once", value: ref("once"),
			doc: "Deduplication: the rule's actions are skipped when its key was seen within for."},
		{name: "actions", value: nullableListOf("action"),
			doc: "What to do when the rule fires, in order. Each item names one action kind with its parameters; any string in them may hold ${ expr } templates."},
		{name: "tests", value: nullableListOf("test"),
			doc: "Test cases, run by friendflow test and at every load: a partial event, whether the rule matches it and, optionally, the rendered actions."},
		{name: "lint", value: ref("lint"), doc: "Lint settings of this rule."},
	}
	onceKeyDecl = []key{
		{name: "key", required: true, value: stringExpression,
			doc: "An expr expression giving the deduplication key, a string, such as From_Account + \"|\" + To_Account. Keys are scoped to the rule and shared by every replica."},
		{name: "for", value: ref("duration"),
			doc: fmt.Sprintf("How long a key is remembered, at least 1s. Default: %s.", shortDuration(defaultOnceFor))},
	}
	// actionKeyDecl are the keys an action item may have next to its one
	// kind key.
	actionKeyDecl = []key{
		{name: "delay", value: ref("duration"),
			doc: "Run the action no sooner than this after the callback, such as 10m. Not for actions decided while the callback waits (deny)."},
		{name: "cancel_on", value: ref("on"),
			doc: fmt.Sprintf("A command, or a list of them, such as Sns.CallbackFriendDelete: a later event of one of them for the same pair (From_Account and To_Account, either direction) drops the action while it waits for its delay, on every replica and across restarts. Needs a delay, of at most %s.", shortDuration(MaxCancelDelay))},
		{name: "retry", value: ref("retry"),
			doc: "The action's retry policy for transient failures. Not for actions decided while the callback waits (deny)."},
	}
	retryKeyDecl = []key{
		{name: "attempts", value: func(*schemaBuilder) jsonSchema { return jsonSchema{"type": "integer", "minimum": 1} },
			doc: fmt.Sprintf("Attempts in all, the first included, before the job becomes a dead letter. Default: %d.", actions.DefaultRetry.Attempts)},
		{name: "backoff", value: ref("duration"),
			doc: fmt.Sprintf("Wait before the first retry; it doubles, with jitter, after each. Default: %s.", shortDuration(actions.DefaultRetry.Backoff))},
		{name: "max_backoff", value: ref("duration"),
			doc: fmt.Sprintf("The longest wait between attempts; not shorter than backoff. Default: %s.", shortDuration(actions.DefaultRetry.MaxBackoff))},
	}
	testKeyDecl = []key{
		{name: "name", required: true, value: scalar, doc: "The test case's name, shown by friendflow test."},
		{name: "event", value: ref("event"),
			doc: "The event, partially: fields left out are empty or 0; CallbackCommand defaults to the rule's first on command."},
		{name: "events", value: listOf("test_event"),
			doc: "A sequence of events instead of event: each is counted and matched in order, counters and once keys carrying over, and the last one is what match, actions and decision check."},
		{name: "match", value: boolean, doc: "Whether the rule must match the event. Required unless decision is given."},
		{name: "actions", value: listOf("expected_action"),
			doc: "Actions the rule must render for the event, in order, among all it renders: every given parameter must equal the rendered value, and a delay or cancel_on given beside the kind the action's."},
		{name: "profiles", value: profilesSchema,
			doc: "IM profiles that profile() gives in this test, by account: Nick, FaceUrl, Gender, Language, Location, SelfSignature, and Custom (a mapping of custom fields). An account not listed has no profile. Tests never call IM."},
		{name: "decision", value: ref("decision"),
			doc: "For a before-callback (Sns.CallbackPrevFriendAdd, Sns.CallbackPrevFriendResponse): the whole rule set's decision for the event, allow, deny, or {deny: CODE, reason: TEXT}."},
		{name: "lists", value: func(*schemaBuilder) jsonSchema {
			return jsonSchema{"type": "object", "additionalProperties": jsonSchema{"type": "array", "items": jsonSchema{"type": []string{"string", "number"}}}}
		}, doc: "The members of lists while this case runs, such as {spammers: [eve]}; a list not given is empty. The deployment's members are never read."},
	}
	testEventKeyDecl = []key{
		{name: "event", required: true, value: ref("event"), doc: "The event, partially, as a test's event."},
		{name: "repeat", value: func(*schemaBuilder) jsonSchema {
			return jsonSchema{"type": "integer", "minimum": 1, "maximum": maxTestEvents}
		},
			doc: "How many times the event arrives, one after the other. Default: 1."},
	}
	decisionKeyDecl = []key{
		{name: "deny", value: func(*schemaBuilder) jsonSchema { return jsonSchema{"type": "integer"} },
			doc: "The expected result code, 38000-39000."},
		{name: "reason", value: scalar, doc: "The expected ResultInfo."},
	}
	lintKeyDecl = []key{
		{name: "ignore", value: func(*schemaBuilder) jsonSchema {
			return jsonSchema{"type": []string{"array", "null"}, "items": jsonSchema{"enum": lintCodes}}
		}, doc: "Warning codes this rule silences (see docs/rules.md, Lint warnings)."},
	}
)

// The known keys of each mapping, for the parser.
var (
	ruleFileKeys  = keyNames(fileKeyDecl)
	ruleKeys      = keyNames(ruleKeyDecl)
	lintKeys      = keyNames(lintKeyDecl)
	onceKeys      = keyNames(onceKeyDecl)
	retryKeys     = keyNames(retryKeyDecl)
	testKeys      = keyNames(testKeyDecl)
	actionKeys    = keyNames(actionKeyDecl)
	decisionKeys  = keyNames(decisionKeyDecl)
	listKeys      = keyNames(listKeyDecl)
	counterKeys   = keyNames(counterKeyDecl)
	testEventKeys = keyNames(testEventKeyDecl)
)

func keyNames(keys []key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.name
	}
	return out
}
