package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

// jsonSchema is one JSON Schema object.
type jsonSchema = map[string]any

// SchemaDialect is the JSON Schema draft Schema is written in.
const SchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// Schema returns the JSON Schema of rule files (draft 2020-12), for editors
// to complete and check them. It is generated from what the loader itself
// reads: the rule-file keys (keys.go), the action kinds' declarations in
// reg and the event's field table (imevent.Fields). Every key, parameter
// and field carries its documentation as its description.
//
// The schema is never stricter than the loader: a file the loader accepts
// passes it. It is looser where a check needs the expression compiler or
// relations between values (a when that is not bool, text and custom both
// given), which only `friendflow lint` can tell.
func Schema(reg *actions.Registry) ([]byte, error) {
	b := &schemaBuilder{reg: reg}
	root := b.object(fileKeyDecl)
	root["$schema"] = SchemaDialect
	root["title"] = "friendflow rule file"
	root["description"] = "Rules that match Tencent Cloud IM friend callbacks and run actions. Reference: docs/rules.md and docs/actions.md; check with friendflow lint."
	root["$defs"] = b.defs()
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // descriptions say <hex HMAC>, for people to read
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// schemaBuilder builds the schema's parts.
type schemaBuilder struct {
	reg *actions.Registry
}

// durationPattern is what time.ParseDuration accepts, without a sign: no
// duration in a rule file may be negative.
const durationPattern = `^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

func (b *schemaBuilder) defs() jsonSchema {
	defs := jsonSchema{
		"rule":       b.object(ruleKeyDecl),
		"once":       b.object(onceKeyDecl),
		"list":       b.object(listKeyDecl),
		"counter":    b.object(counterKeyDecl),
		"test_event": b.object(testEventKeyDecl),
		"retry":      b.object(retryKeyDecl),
		"test":       testSchema(b.object(testKeyDecl)),
		"lint":       b.object(lintKeyDecl),
		"command":    jsonSchema{"enum": imevent.Commands, "description": "A Tencent IM friend callback command."},
		"on":         jsonSchema{"anyOf": []any{ref("command")(b), jsonSchema{"type": "array", "items": ref("command")(b), "minItems": 1, "uniqueItems": true}}},
		"template":   jsonSchema{"type": "string", "pattern": `\$\{`, "description": "A ${ expr } template, rendered when the rule fires."},
		"duration": jsonSchema{
			"description": "A Go duration such as 500ms, 30s, 10m or 24h (https://pkg.go.dev/time#ParseDuration).",
			"anyOf":       []any{jsonSchema{"type": "string", "pattern": durationPattern}, jsonSchema{"const": 0}},
		},
		"event":           b.event(),
		"decision":        b.decision(),
		"action":          b.action(),
		"expected_action": b.expectedAction(),
	}
	for _, k := range b.reg.Kinds() {
		defs["params."+k.Spec().Name] = b.params(k.Spec())
	}
	return defs
}

// object is the schema of a mapping with the keys decl.
func (b *schemaBuilder) object(decl []key) jsonSchema {
	props := jsonSchema{}
	required := []string{}
	for _, k := range decl {
		s := k.value(b)
		s["description"] = k.doc
		props[k.name] = s
		if k.required {
			required = append(required, k.name)
		}
	}
	o := jsonSchema{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// The values of keys (see key.value).

func ref(def string) func(*schemaBuilder) jsonSchema {
	return func(*schemaBuilder) jsonSchema { return jsonSchema{"$ref": "#/$defs/" + def} }
}

func listOf(def string) func(*schemaBuilder) jsonSchema {
	return func(b *schemaBuilder) jsonSchema { return jsonSchema{"type": "array", "items": ref(def)(b)} }
}

// nullableListOf is a list that may also be left empty (`actions:`).
func nullableListOf(def string) func(*schemaBuilder) jsonSchema {
	return func(b *schemaBuilder) jsonSchema {
		return jsonSchema{"type": []string{"array", "null"}, "items": ref(def)(b)}
	}
}

// scalar is a value the loader reads as text: YAML writes `name: 42` as a
// number, and the loader takes it as "42".
func scalar(*schemaBuilder) jsonSchema {
	return jsonSchema{"type": []string{"string", "number", "boolean"}}
}

func nonEmptyScalar(*schemaBuilder) jsonSchema {
	return jsonSchema{"type": []string{"string", "number", "boolean"}, "pattern": `\S`}
}

// expression is a when: `when: true` is an expression too.
func expression(*schemaBuilder) jsonSchema {
	return jsonSchema{"type": []string{"string", "boolean"}}
}

func stringExpression(*schemaBuilder) jsonSchema { return jsonSchema{"type": "string"} }

func boolean(*schemaBuilder) jsonSchema { return jsonSchema{"type": "boolean"} }

// profilesSchema is a test's profiles: account → profile fields.
func profilesSchema(*schemaBuilder) jsonSchema {
	str := func(doc string) jsonSchema {
		return jsonSchema{"type": []string{"string", "number", "boolean"}, "description": doc}
	}
	props := jsonSchema{
		"Nick":          str("Tag_Profile_IM_Nick: the nickname."),
		"FaceUrl":       str("Tag_Profile_IM_Image: the avatar URL."),
		"Gender":        str("Tag_Profile_IM_Gender: Gender_Type_Unknown, Gender_Type_Female or Gender_Type_Male."),
		"Location":      str("Tag_Profile_IM_Location."),
		"SelfSignature": str("Tag_Profile_IM_SelfSignature: the signature."),
		"Language":      jsonSchema{"type": "integer", "minimum": 0, "description": "Tag_Profile_IM_Language, a number."},
		"Custom": jsonSchema{"type": "object", "additionalProperties": str("The custom field's value."),
			"propertyNames": jsonSchema{"pattern": "^[A-Za-z]{1,8}$"},
			"description":   "Custom fields (Tag_Profile_Custom_KEY) by KEY."},
	}
	return jsonSchema{"type": "object", "additionalProperties": jsonSchema{
		"type": "object", "properties": props, "additionalProperties": false}}
}

// event is a test case's partial event: the field table's fields, with
// Tencent's documented values as examples (a test may use others).
func (b *schemaBuilder) event() jsonSchema {
	props := jsonSchema{}
	for i := range imevent.Fields {
		f := &imevent.Fields[i]
		s := jsonSchema{"description": f.Doc}
		switch {
		case f.Name == "CallbackCommand":
			s["$ref"] = "#/$defs/command"
		case f.Type == "int":
			s["type"] = "integer"
		default:
			s["type"] = []string{"string", "number", "boolean"}
		}
		switch {
		case f.Name == "CallbackCommand":
		case len(f.Values) > 0:
			s["examples"] = f.Values
		case len(f.Ints) > 0:
			s["examples"] = f.Ints
		}
		props[f.Name] = s
	}
	return jsonSchema{"type": []string{"object", "null"}, "properties": props, "additionalProperties": false}
}

func (b *schemaBuilder) decision() jsonSchema {
	return jsonSchema{"anyOf": []any{jsonSchema{"enum": []string{"allow", "deny"}}, b.object(decisionKeyDecl)}}
}

// action is an item of a rule's actions: one kind key with its
// parameters, next to the common keys.
func (b *schemaBuilder) action() jsonSchema {
	o := b.object(actionKeyDecl)
	props := o["properties"].(jsonSchema)
	var oneKind []any
	for _, k := range b.reg.Kinds() {
		s := k.Spec()
		props[s.Name] = jsonSchema{"$ref": "#/$defs/params." + s.Name, "description": kindDoc(s)}
		oneKind = append(oneKind, jsonSchema{"required": []string{s.Name}})
	}
	o["oneOf"] = oneKind
	o["description"] = "One action: exactly one kind key (" + strings.Join(b.reg.Names(), ", ") + ") with its parameters."
	return o
}

func kindDoc(s actions.Spec) string {
	doc := s.Doc
	if s.Sync {
		doc += " Only on " + strings.Join(prevCommands(), ", ") + "."
	}
	return doc + " Reference: docs/actions.md."
}

// expectedAction is an item of a test's actions: one kind with the
// parameters to compare, as plain values.
func (b *schemaBuilder) expectedAction() jsonSchema {
	props := jsonSchema{}
	var oneKind []any
	for _, k := range b.reg.Kinds() {
		s := k.Spec()
		params := jsonSchema{}
		for _, p := range s.Params {
			params[p.Name] = jsonSchema{"description": paramDoc(p)}
		}
		props[s.Name] = jsonSchema{
			"description": kindDoc(s),
			"anyOf":       []any{jsonSchema{"type": "null"}, jsonSchema{"type": "object", "properties": params, "additionalProperties": false}},
		}
		oneKind = append(oneKind, jsonSchema{"required": []string{s.Name}})
	}
	// Beside its one kind, the rendered action's delay and cancel_on.
	props["delay"] = jsonSchema{"$ref": "#/$defs/duration", "description": "The delay the action must have."}
	props["cancel_on"] = jsonSchema{"$ref": "#/$defs/on", "description": "The cancel_on the action must have."}
	return jsonSchema{"type": "object", "properties": props, "additionalProperties": false, "oneOf": oneKind}
}

// params is the schema of a kind's parameters.
func (b *schemaBuilder) params(s actions.Spec) jsonSchema {
	o := paramObject(s.Params)
	if _, required := o["required"]; required {
		return o
	}
	// `- log:` with nothing is the defaults.
	return jsonSchema{"anyOf": []any{jsonSchema{"type": "null"}, o}}
}

func paramObject(ps []actions.Param) jsonSchema {
	props := jsonSchema{}
	var required []string
	for _, p := range ps {
		props[p.Name] = paramSchema(p)
		if p.Required {
			required = append(required, p.Name)
		}
	}
	o := jsonSchema{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// paramSchema is one parameter's schema: its declared type, as Check
// normalises it, or a template, which Check takes for any type at load.
// An optional parameter may be null: Check takes that as not given.
func paramSchema(p actions.Param) jsonSchema {
	template := jsonSchema{"$ref": "#/$defs/template"}
	var alts []any
	switch p.Type {
	case actions.String:
		if len(p.Enum) > 0 {
			alts = append(alts, jsonSchema{"enum": p.Enum}, template)
		} else {
			alts = append(alts, jsonSchema{"type": []string{"string", "number", "boolean"}})
		}
	case actions.URL: // a template in a URL is a string too
		alts = append(alts, jsonSchema{"type": []string{"string", "number", "boolean"}})
	case actions.Int:
		alts = append(alts, jsonSchema{"type": "integer"}, template)
	case actions.Bool:
		alts = append(alts, jsonSchema{"type": "boolean"}, template)
	case actions.Duration:
		alts = append(alts, jsonSchema{"type": "string", "pattern": durationPattern}, template)
	case actions.StringMap:
		alts = append(alts, jsonSchema{"type": "object", "additionalProperties": jsonSchema{"type": []string{"string", "number", "boolean"}}}, template)
	case actions.Map:
		alts = append(alts, jsonSchema{"type": "object"}, template)
	case actions.Object:
		alts = append(alts, paramObject(p.Fields), template)
	default: // Any; also StringList, which the schema does not yet describe as a list
		alts = append(alts, jsonSchema{})
	}
	if !p.Required && p.Type != actions.Any {
		alts = append(alts, jsonSchema{"type": "null"})
	}
	s := jsonSchema{"description": paramDoc(p)}
	if len(alts) == 1 {
		for k, v := range alts[0].(jsonSchema) {
			s[k] = v
		}
		return s
	}
	s["anyOf"] = alts
	return s
}

// paramDoc is a parameter's documentation with its type and default, as
// the action reference writes them.
func paramDoc(p actions.Param) string {
	doc := fmt.Sprintf("%s (%s", p.Doc, p.Type)
	switch {
	case p.Required:
		doc += ", required"
	case p.Default != nil:
		doc += ", default " + p.DefaultText()
	}
	doc += ")"
	if p.Secret {
		doc += "; secret: never logged, redacted in explain"
	}
	return doc
}

// shortDuration writes 24h0m0s as 24h.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// testSchema adds to a test case's object what the loader requires of
// its keys together: match or decision, and event or events, not both.
func testSchema(o jsonSchema) jsonSchema {
	o["anyOf"] = []any{jsonSchema{"required": []string{"match"}}, jsonSchema{"required": []string{"decision"}}}
	o["not"] = jsonSchema{"required": []string{"event", "events"}}
	return o
}
