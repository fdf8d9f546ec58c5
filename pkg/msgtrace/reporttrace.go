package msgtrace

import (
	"time"

	"github.com/mfcheck/mfcheck/pkg/report"
)

// Report converts the trace into the report's Received-chain section;
// source says where the message was read ("-", a path, "maildir DIR,
// token T"). The findings are not part of it: add t.Findings to the
// report beside it.
func (t *Trace) Report(source string) *report.Trace {
	rt := &report.Trace{Source: source, MessageID: t.MessageID, Token: t.Token, From: t.From, To: t.To,
		Subject: t.Subject, Hops: make([]report.TraceHop, 0, len(t.Hops))}
	if !t.Date.IsZero() {
		rt.Date = t.Date.Format(time.RFC3339)
	}
	for _, h := range t.Hops {
		th := report.TraceHop{Index: h.Index, From: h.From, FromIP: h.FromIP, By: h.By, With: h.With,
			TLS: h.TLS, TLSVersion: h.TLSVersion, Cipher: h.TLSCipher, DelayS: h.DelayS,
			Gateway: h.Gateway, ParseError: h.ParseError}
		if !h.Time.IsZero() {
			th.Time = h.Time.Format(time.RFC3339)
		}
		rt.Hops = append(rt.Hops, th)
	}
	return rt
}
