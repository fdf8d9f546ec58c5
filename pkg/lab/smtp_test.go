package lab_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mfcheck/mfcheck/pkg/lab"
)

// The lab's SMTP hosts present the certificates the demo story needs, as a
// standard TLS client (go-smtp's) sees them.
func TestLabSMTPHosts(t *testing.T) {
	w, err := lab.Start()
	require.NoError(t, err)
	defer w.Close()
	require.NotZero(t, w.SMTPPort)

	tests := []struct {
		host, addr string
		untrusted  bool
	}{
		{"eu-smtp-inbound-1.mimecast.com", "127.0.55.31", false},
		{"eu-smtp-inbound-2.mimecast.com", "127.0.55.32", false}, // valid, but expires within 21 days
		{"eu-smtp-o365-outbound-1.mimecast.com", "127.0.55.41", false},
		{"eu-smtp-o365-outbound-2.mimecast.com", "127.0.55.42", true}, // served without its intermediate
		{"contoso-example.mail.protection.outlook.com", "127.0.55.20", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			addr := net.JoinHostPort(tt.addr, strconv.Itoa(w.SMTPPort))
			c, err := smtp.DialStartTLS(addr, &tls.Config{ServerName: tt.host, RootCAs: w.Roots})
			if err == nil {
				// The handshake happens with the first command over TLS.
				err = c.Hello("lab-test.invalid")
			}
			if tt.untrusted {
				var target x509.UnknownAuthorityError
				assert.True(t, errors.As(err, &target), "want an unknown-authority error (missing intermediate), got %v", err)
				return
			}
			require.NoError(t, err)
			defer c.Close()
			state, ok := c.TLSConnectionState()
			require.True(t, ok)
			assert.Equal(t, tt.host, state.PeerCertificates[0].Subject.CommonName)
			if strings.Contains(tt.host, "inbound-2") {
				assert.Less(t, state.PeerCertificates[0].NotAfter.Sub(state.PeerCertificates[0].NotBefore).Hours()/24, 60.0)
			}
		})
	}
}

// The lab accepts mail for its own domain only: it never relays.
func TestLabSMTPAcceptsOnlyTheLabDomain(t *testing.T) {
	w, err := lab.Start()
	require.NoError(t, err)
	defer w.Close()

	c, err := smtp.DialStartTLS(net.JoinHostPort("127.0.55.31", strconv.Itoa(w.SMTPPort)),
		&tls.Config{ServerName: "eu-smtp-inbound-1.mimecast.com", RootCAs: w.Roots})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Mail("probe@example.net", nil))
	err = c.Rcpt("someone@example.org", nil)
	var se *smtp.SMTPError
	require.True(t, errors.As(err, &se), "relaying must be refused, got %v", err)
	assert.Equal(t, 550, se.Code)

	require.NoError(t, c.SendMail("probe@example.net", []string{"postmaster@" + lab.Domain}, strings.NewReader("Subject: lab\r\n\r\nhello\r\n")))
	msgs := w.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, "eu-smtp-inbound-1.mimecast.com", msgs[0].Host)
	assert.Equal(t, []string{"postmaster@" + lab.Domain}, msgs[0].To)
	assert.Contains(t, string(msgs[0].Data), "hello")
}
