package smtpprobe

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseQueueID(t *testing.T) {
	for text, want := range map[string]string{
		"2.0.0 Ok: queued as 4ABCD":          "4ABCD",
		"2.0.0 Ok: queued as 4Xyz9kLmN2z1Qp": "4Xyz9kLmN2z1Qp",
		"Ok: queued as 4ABCD.":               "4ABCD",
		"OK id=1qABCd-0001Xy-2Z":             "1qABCd-0001Xy-2Z",
		"2.6.0 <mfc-abc@sender.test> [InternalId=123, Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com] 5012 bytes in 0.090, 54.254 KB/sec Queued mail for delivery": "mfc-abc@sender.test",
		"2.0.0 3A1B2C3D4E Message accepted for delivery":  "3A1B2C3D4E",
		"2.0.0 OK  1700000000 a1si1234567qkb.123 - gsmtp": "a1si1234567qkb.123",
		"2.0.0 OK: queued":                      "",
		"2.0.0 Message accepted for delivery":   "",
		"":                                      "",
		"queued as ":                            "",
		"queued as <>":                          "",
		"2.0.0 Ok: queued as \x1b[31mX":         "",
		"2.0.0 Ok\nqueued as SECOND-LINE":       "",
		"queued as " + strings.Repeat("A", 200): "",
	} {
		assert.Equal(t, want, ParseQueueID(text), "%q", text)
	}
}

func TestParseEnhancedCode(t *testing.T) {
	for text, want := range map[string]string{
		"5.7.1 relay denied": "5.7.1",
		"4.7.51 later":       "4.7.51",
		"2.0.0":              "2.0.0",
		"relay denied":       "",
		"3.1.1 no":           "",
		"5.7 no":             "",
		"5.7.1234 no":        "",
		"5.x.1 no":           "",
	} {
		assert.Equal(t, want, parseEnhancedCode(text), "%q", text)
	}
}

// FuzzParseQueueID: whatever the reply, the id is a short, clean token
// taken from the first line of the text.
func FuzzParseQueueID(f *testing.F) {
	for _, s := range []string{
		"2.0.0 Ok: queued as 4ABCD", "OK id=1qABCd-0001Xy-2Z", "2.6.0 <a@b> [InternalId=1] Queued mail for delivery",
		"2.0.0 3A1B Message accepted for delivery", "2.0.0 OK 17 x.1 - gsmtp", "queued as", "<", "<>", "id=", "- gsmtp", "\xff<\x00>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		id := ParseQueueID(text)
		if id == "" {
			return
		}
		first, _, _ := strings.Cut(text, "\n")
		if !strings.Contains(first, id) {
			t.Fatalf("id %q is not in the first line of %q", id, text)
		}
		if len(id) > maxQueueID || !idChars(id) {
			t.Fatalf("id %q is not a clean token", id)
		}
		if ParseQueueID(text) != id {
			t.Fatal("not deterministic")
		}
	})
}
