package im

import (
	"errors"

	"github.com/friendflow/friendflow/actions"
)

// Kinds returns every IM action kind, calling IM through c. c may be nil
// where no IM call can happen (lint, test, explain): the kinds then
// validate but fail permanently when run.
func Kinds(c *Client) []actions.Kind {
	return []actions.Kind{NewSend(c), NewBatchSend(c), NewAddToGroup(c), NewFriendUpdate(c)}
}

// notConfigured is the failure of a job of kind run without a Client.
func notConfigured(kind string) error {
	return actions.Permanent(errors.New(kind + ": IM is not configured (--im-secret-key, --sdkappid)"))
}
