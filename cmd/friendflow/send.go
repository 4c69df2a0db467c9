package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/rules/imevent"
)

// tencentTimeout is how long Tencent IM waits for a callback's reply
// (https://www.tencentcloud.com/document/product/1047/34354).
const tencentTimeout = 2 * time.Second

// sendFlags are send's flags.
type sendFlags struct {
	url       string
	sdkappid  int
	tokenFile string
	event     string
	command   string
	clientIP  string
	platform  string
	timeout   time.Duration
	to        []string
	fields    []*fieldFlag // the body's fields, one flag each
}

// sendCommand signs and POSTs a callback the way Tencent IM does, so an
// operator can test a deployment end to end.
func sendCommand(fs *flag.FlagSet) runFunc {
	f := new(sendFlags)
	fs.StringVar(&f.url, "url", "", "the callback URL, as set in the IM console: http://HOST:8080/callback (required)")
	fs.IntVar(&f.sdkappid, "sdkappid", 0, "the SdkAppid query parameter (required)")
	fs.StringVar(&f.tokenFile, "callback-token-file", "", "file holding the callback token: adds Sign and RequestTime as Tencent does")
	fs.StringVar(&f.event, "event", "", "the callback body to send (JSON file, - for stdin), instead of building one from the flags below")
	fs.StringVar(&f.command, "command", "", "CallbackCommand [the body's; Sns.CallbackFriendAdd when built from flags]")
	fs.StringVar(&f.clientIP, "client-ip", "127.0.0.1", "the ClientIP query parameter")
	fs.StringVar(&f.platform, "opt-platform", "RESTAPI", "the OptPlatform query parameter")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the reply (Tencent waits 2s)")
	fs.Func("to", "To_Account: whom the event is for; repeat for one event each (required without --event)", func(s string) error {
		f.to = append(f.to, s)
		return nil
	})
	f.fields = declareFieldFlags(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("unexpected argument %q", inv.args[0])
		}
		req, err := f.request(ctx)
		if err != nil {
			return err
		}
		return post(req, f.timeout, inv.stdout)
	}
}

// fieldFlag is a flag for one body field of the event table.
type fieldFlag struct {
	field *imevent.Field
	flag  string
	value any // string or int; nil when not given
}

func (f *fieldFlag) String() string {
	if f == nil || f.value == nil {
		return ""
	}
	return fmt.Sprint(f.value)
}

func (f *fieldFlag) Set(s string) error {
	if f.field.Type != "int" {
		f.value = s
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want an integer")
	}
	f.value = n
	return nil
}

// declareFieldFlags declares a flag for every field a callback body carries
// (From_Account is --from, ForceFlag --force-flag), from the event's field
// table, so a field added there can be sent at once. To_Account is --to,
// declared by send itself as it repeats.
func declareFieldFlags(fs *flag.FlagSet) []*fieldFlag {
	var out []*fieldFlag
	for i := range imevent.Fields {
		fd := &imevent.Fields[i]
		if fd.Name == "To_Account" || !inBody(fd) {
			continue
		}
		ff := &fieldFlag{field: fd, flag: fieldFlagName(fd.Name)}
		fs.Var(ff, ff.flag, fd.Name+": "+fd.Doc)
		out = append(out, ff)
	}
	return out
}

// inBody reports whether any command reads fd from the callback body.
func inBody(fd *imevent.Field) bool {
	for _, src := range fd.From {
		if src == imevent.FromBody || src == imevent.FromElem {
			return true
		}
	}
	return false
}

// fieldFlagName is the flag of an event field: From_Account is from,
// ForceAddFlags is force-add-flags.
func fieldFlagName(name string) string {
	name = strings.TrimSuffix(name, "_Account")
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// request builds the signed POST.
func (f *sendFlags) request(ctx context.Context) (*http.Request, error) {
	if f.url == "" {
		return nil, usagef("send needs --url, the callback URL (such as http://127.0.0.1:8080/callback)")
	}
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--url must be an http:// or https:// URL, got %q", f.url)
	}
	if f.sdkappid <= 0 {
		return nil, usagef("send needs --sdkappid, the SdkAppid friendflow serves")
	}
	if f.timeout <= 0 {
		return nil, usagef("--timeout must be positive, got %s", f.timeout)
	}
	body, command, err := f.body()
	if err != nil {
		return nil, err
	}
	query, err := f.query(command)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" {
		query = u.RawQuery + "&" + query
	}
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// query is the query string Tencent appends to the callback URL, in its
// order: SdkAppid, CallbackCommand, contenttype, ClientIP, OptPlatform, and
// with a token Sign and RequestTime, where Sign is the hex SHA-256 of the
// token followed by RequestTime
// (https://www.tencentcloud.com/document/product/1047/34354).
func (f *sendFlags) query(command string) (string, error) {
	q := "SdkAppid=" + strconv.Itoa(f.sdkappid) +
		"&CallbackCommand=" + url.QueryEscape(command) +
		"&contenttype=json" +
		"&ClientIP=" + url.QueryEscape(f.clientIP) +
		"&OptPlatform=" + url.QueryEscape(f.platform)
	if f.tokenFile == "" {
		return q, nil
	}
	var none secretValue
	token, err := readSecret("callback-token", &none, f.tokenFile, nil)
	if err != nil {
		return "", err
	}
	rt := strconv.FormatInt(time.Now().Unix(), 10)
	return q + "&Sign=" + imcallback.Sign(token, rt) + "&RequestTime=" + rt, nil
}

// body returns the callback body and its command: the --event file as it
// is, or one built from the field flags.
func (f *sendFlags) body() ([]byte, string, error) {
	given := f.givenFields()
	if f.event != "" {
		if len(given) > 0 || len(f.to) > 0 {
			name := "to"
			if len(given) > 0 {
				name = given[0].flag
			}
			return nil, "", usagef("--event sends its file as it is; leave out --%s", name)
		}
		return f.eventBody()
	}
	command := f.command
	if command == "" {
		command = imevent.CmdFriendAdd
	}
	if !imevent.IsCommand(command) {
		return nil, "", usagef("--command: unknown command %q%s", command, didYouMean(command, imevent.Commands))
	}
	if len(f.to) == 0 || !has(given, "From_Account") {
		return nil, "", usagef("send needs --event FILE, or --from and --to to build a %s body", command)
	}
	b, err := buildBody(command, given, f.to)
	return b, command, err
}

func (f *sendFlags) eventBody() ([]byte, string, error) {
	data, err := readInput(f.event)
	if err != nil {
		return nil, "", fmt.Errorf("reading --event: %w", err)
	}
	var probe struct{ CallbackCommand string }
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, "", fmt.Errorf("--event %s is not a JSON object: %w", f.event, err)
	}
	command := f.command
	if command == "" {
		command = probe.CallbackCommand
	}
	if command == "" {
		return nil, "", usagef("--event %s has no CallbackCommand; give --command", f.event)
	}
	return data, command, nil
}

func (f *sendFlags) givenFields() []*fieldFlag {
	var out []*fieldFlag
	for _, ff := range f.fields {
		if ff.value != nil {
			out = append(out, ff)
		}
	}
	return out
}

func has(given []*fieldFlag, name string) bool {
	for _, ff := range given {
		if ff.field.Name == name {
			return true
		}
	}
	return false
}

// buildBody writes a body of command, as the field table says Tencent lays
// it out: one element of the command's list per --to, the element fields
// in each, the others at the top level.
func buildBody(command string, given []*fieldFlag, to []string) ([]byte, error) {
	body := map[string]any{"CallbackCommand": command}
	elem := map[string]any{}
	for _, ff := range given {
		switch ff.field.From[command] {
		case imevent.FromBody:
			body[ff.field.Name] = ff.value
		case imevent.FromElem:
			elem[ff.field.Name] = ff.value
		default:
			return nil, usagef("--%s: %s does not carry %s", ff.flag, command, ff.field.Name)
		}
	}
	if scalarList(command) {
		// FollowDelete's list is the To_Account strings themselves.
		body[imevent.Lists[command]] = to
		return json.Marshal(body)
	}
	list := make([]map[string]any, len(to))
	for i, account := range to {
		e := make(map[string]any, len(elem)+1)
		for k, v := range elem {
			e[k] = v
		}
		e["To_Account"] = account
		list[i] = e
	}
	body[imevent.Lists[command]] = list
	return json.Marshal(body)
}

// scalarList reports whether command's list holds plain values rather
// than objects (imevent.Command.Scalar).
func scalarList(command string) bool {
	for _, c := range imevent.CommandTable {
		if c.Name == command {
			return c.Scalar != ""
		}
	}
	return false
}

// post sends req and prints the HTTP status and the reply. Only a 200 whose
// reply says ActionStatus OK succeeds: anything else is what Tencent would
// count as a failed callback.
func post(req *http.Request, timeout time.Duration, stdout io.Writer) error {
	client := &http.Client{Timeout: timeout}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the whole URL, Sign included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("POST %s: %w", redactQuery(req.URL), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	took := time.Since(start)
	if err != nil {
		return fmt.Errorf("reading the reply: %w", err)
	}
	note := ""
	if took > tencentTimeout {
		note = fmt.Sprintf("; Tencent would have given up after %s", tencentTimeout)
	}
	fmt.Fprintf(stdout, "HTTP %s (%s%s)\n%s\n", resp.Status, took.Round(time.Millisecond), note, printable(raw))
	var reply imcallback.Reply
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &reply) != nil || reply.ActionStatus != "OK" {
		return &exitError{1}
	}
	return nil
}

// printable is a reply safe to print on a terminal: JSON compacted (its
// strings cannot hold raw control characters), anything else quoted.
func printable(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return strconv.Quote(oneLine(string(raw), 500))
}

// redactQuery is u without its query (the Sign), for error messages.
func redactQuery(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String()
}
