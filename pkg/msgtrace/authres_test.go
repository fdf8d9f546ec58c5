package msgtrace

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/report"
)

func TestParseAuthResults(t *testing.T) {
	id, rs, err := ParseAuthResults("mx.google.com; dkim=pass header.i=@fabrikam.example header.s=s1; " +
		"spf=pass (google.com: domain of a@fabrikam.example; designates 203.0.113.25 as permitted sender) smtp.mailfrom=a@fabrikam.example; " +
		"dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=fabrikam.example")
	require.NoError(t, err)
	assert.Equal(t, "mx.google.com", id)
	require.Len(t, rs, 3, "the ';' inside the comment is not a separator")
	assert.Equal(t, AuthResult{AuthServID: "mx.google.com", Method: "spf", Result: "pass",
		Props: map[string]string{"smtp.mailfrom": "a@fabrikam.example"}, Raw: "spf=pass smtp.mailfrom=a@fabrikam.example"}, rs[1])
	assert.Equal(t, "s1", rs[0].Props["header.s"])

	// Exchange Online: no authserv-id; compauth is a generic method.
	id, rs, err = ParseAuthResults("spf=softfail (sender IP is 185.58.86.151) smtp.mailfrom=fabrikam.example; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=fabrikam.example;compauth=fail reason=601")
	require.NoError(t, err)
	assert.Equal(t, "", id)
	require.Len(t, rs, 4)
	assert.Equal(t, "softfail", rs[0].Result)
	assert.Equal(t, "compauth", rs[3].Method)
	assert.Equal(t, "601", rs[3].Props["reason"])

	// Version 1 is accepted, others are errors; "none" is no result.
	_, rs, err = ParseAuthResults("mx.example 1; none")
	require.NoError(t, err)
	assert.Empty(t, rs)
	_, _, err = ParseAuthResults("mx.example 2; spf=pass")
	assert.Error(t, err)
}

func TestAuthResultsTrust(t *testing.T) {
	outside := "mx.contoso.example; spf=pass smtp.mailfrom=x; dkim=pass header.d=x; dmarc=pass header.from=x" // forged by the sender
	ours := "mx.contoso.example; spf=fail smtp.mailfrom=x; dkim=fail header.d=x; dmarc=fail header.from=x"
	other := "relay.example; spf=pass smtp.mailfrom=x; dkim=pass header.d=x; dmarc=pass header.from=x"

	// Configured: only that id counts, whatever comes first.
	rs, f := authResultsFinding([]string{other, ours}, "MX.contoso.example", "m")
	assert.Equal(t, report.StatusFail, f.Status, f.Message)
	assert.Equal(t, false, f.Evidence["assumed"])
	for _, r := range rs {
		assert.Equal(t, r.AuthServID == "mx.contoso.example", r.Trusted)
	}

	// Not configured: the topmost field's id, and the message says so.
	_, f = authResultsFinding([]string{other, ours}, "", "m")
	assert.Equal(t, report.StatusPass, f.Status)
	assert.Contains(t, f.Message, "assumed")

	// The configured id is absent.
	_, f = authResultsFinding([]string{other}, "mx.contoso.example", "m")
	assert.Equal(t, report.StatusWarn, f.Status)
	assert.Contains(t, f.Message, `No Authentication-Results field from "mx.contoso.example"`)
	assert.Contains(t, f.Message, `"relay.example"`)

	// Two fields with the same id: the topmost (ours) decides, and a forged
	// one further down that the border failed to remove (RFC 8601 §5) does not.
	_, f = authResultsFinding([]string{ours, outside}, "mx.contoso.example", "m")
	assert.Equal(t, report.StatusFail, f.Status, "the first dmarc verdict of the trusted id decides")

	// dmarc none is not a pass.
	_, f = authResultsFinding([]string{"mx.contoso.example; spf=pass; dkim=pass; dmarc=none"}, "", "m")
	assert.Equal(t, report.StatusWarn, f.Status)
	assert.Contains(t, f.Message, "No DMARC pass")
}
