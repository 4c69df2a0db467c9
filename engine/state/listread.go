package state

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxPage is the most members one Page returns.
const MaxPage = 1000

// Page returns up to limit members of the list, in the order they were
// written, from cursor on (0: the first), and the cursor of the next page
// (0: there is none). It reads the bucket's stream one member at a time
// (JetStream's direct get of the next message of a subject), so a page
// of a list of any size holds one page in memory.
func (l *Lists) Page(ctx context.Context, name string, cursor uint64, limit int) (members []string, next uint64, err error) {
	if err := CheckName(name); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	if cursor == 0 {
		cursor = 1
	}
	prefix := "$KV." + l.bucket + "." + name + "." + strconv.FormatUint(l.gen(name), 10) + "."
	for len(members) < limit {
		msg, err := l.stream.GetMsg(ctx, cursor, jetstream.WithGetMsgSubject(prefix+">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return members, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("lists: read %s: %w", name, err)
		}
		cursor = msg.Sequence + 1
		if op := msg.Header.Get("KV-Operation"); op != "" {
			continue // a removed member's marker
		}
		m, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(msg.Subject, prefix))
		if err != nil {
			continue
		}
		members = append(members, string(m))
	}
	return members, cursor, nil
}
