package smtpprobe

import (
	"context"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"

	"github.com/mfcheck/mfcheck/pkg/report"
)

func TestBypass(t *testing.T) {
	t.Run("open: RCPT accepted", func(t *testing.T) {
		srv := &mailServer{TLS: validTLS(t)}
		tgt := srv.start(t)
		o := sendOpts(t, PathBypass)
		o.Message = []byte("must never be sent")
		r := Bypass(context.Background(), []Target{tgt}, testFrom, testTo, o)
		assert.True(t, r.Accepted, r.Err)
		assert.Equal(t, StageRcpt, r.QuitAfter)
		assert.Equal(t, int32(0), srv.dataCmds.Load(), "never DATA")
		assert.False(t, transcriptHas(r.Transcript, "C: DATA"))
		assert.True(t, transcriptHas(r.Transcript, "C: RSET"))
		assert.True(t, transcriptHas(r.Transcript, "C: QUIT"))
		f := r.Finding()
		byID(t, []report.Finding{f})
		assert.Equal(t, IDBypass, f.ID)
		assert.Equal(t, report.StatusFail, f.Status)
		assert.Contains(t, f.Message, "Direct delivery is open")
		assert.Contains(t, f.Remediation, "inbound connector")
	})
	t.Run("locked: 550 to RCPT", func(t *testing.T) {
		srv := &mailServer{TLS: validTLS(t), RcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 51}, Message: "TenantInboundAttribution; Rejecting per inbound connector"}}
		r := Bypass(context.Background(), []Target{srv.start(t)}, testFrom, testTo, sendOpts(t, PathBypass))
		assert.Equal(t, StageRcpt, r.Failed)
		assert.Equal(t, "5.7.51", r.EnhancedCode)
		assert.Equal(t, int32(0), srv.dataCmds.Load())
		f := r.Finding()
		assert.Equal(t, report.StatusPass, f.Status)
		assert.Contains(t, f.Message, "550 5.7.51")
	})
	t.Run("locked: 550 to MAIL", func(t *testing.T) {
		srv := &mailServer{RcptErr: nil, MailErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "not from the gateway"}}
		r := Bypass(context.Background(), []Target{srv.start(t)}, testFrom, testTo, sendOpts(t, PathBypass))
		assert.Equal(t, StageMail, r.Failed)
		assert.Equal(t, report.StatusPass, r.Finding().Status)
	})
	t.Run("inconclusive: 451", func(t *testing.T) {
		srv := &mailServer{RcptErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "try later"}}
		r := Bypass(context.Background(), []Target{srv.start(t)}, testFrom, testTo, sendOpts(t, PathBypass))
		assert.Equal(t, report.StatusWarn, r.Finding().Status)
	})
	t.Run("unreachable", func(t *testing.T) {
		r := Bypass(context.Background(), []Target{refusedTarget(t)}, testFrom, testTo, sendOpts(t, PathBypass))
		f := r.Finding()
		assert.Equal(t, report.StatusError, f.Status)
		assert.Contains(t, f.Message, "Could not test direct delivery")
	})
	t.Run("Send on the bypass path never sends DATA either", func(t *testing.T) {
		srv := &mailServer{}
		o := sendOpts(t, PathBypass, srv.start(t))
		o.Message = []byte("Subject: x\r\n\r\nbody\r\n")
		o.Auth = &Auth{Username: "u", Password: "never-used-pass"}
		r := Send(context.Background(), o)
		assert.True(t, r.Accepted, r.Err)
		assert.Equal(t, int32(0), srv.dataCmds.Load())
		assert.False(t, transcriptHas(r.Transcript, "C: AUTH"), "no credentials on the bypass path")
	})
}
