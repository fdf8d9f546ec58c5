package report

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTLSEndpointSubject(t *testing.T) {
	tests := []struct {
		e    TLSEndpoint
		want string
	}{
		{TLSEndpoint{Host: "mx.example", Address: "192.0.2.1", Port: 25}, "mx.example [192.0.2.1]"},
		{TLSEndpoint{Host: "mx.example", Address: "192.0.2.1", Port: 465}, "mx.example [192.0.2.1]:465"},
		{TLSEndpoint{Host: "mx.example", Address: "2001:db8::1", Port: 2525}, "mx.example [2001:db8::1]:2525"},
		{TLSEndpoint{Address: "2001:db8::1", Port: 2525}, "[2001:db8::1]:2525"},
		{TLSEndpoint{Address: "192.0.2.1"}, "192.0.2.1"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.e.Endpoint())
	}
}

func TestSchemaRejectsBadTLSEndpoints(t *testing.T) {
	sch := compileSchema(t)
	good := render(t, FormatJSON, Options{}, tlsContoso())
	require.NoError(t, sch.Validate(decode(t, good)))
	endpoint0 := func(d map[string]any) map[string]any { return d["tls"].([]any)[0].(map[string]any) }
	for name, mutate := range map[string]func(map[string]any){
		"unknown verdict": func(d map[string]any) { endpoint0(d)["verdict"] = "ok" },
		"unknown role":    func(d map[string]any) { endpoint0(d)["role"] = "relay" },
		"unknown phase":   func(d map[string]any) { endpoint0(d)["phases_ms"].(map[string]any)["dns"] = 1.0 },
		"port zero":       func(d map[string]any) { endpoint0(d)["port"] = 0 },
		"missing verdict": func(d map[string]any) { delete(endpoint0(d), "verdict") },
		"unknown member":  func(d map[string]any) { endpoint0(d)["grade"] = "A+" },
	} {
		t.Run(name, func(t *testing.T) {
			d := decode(t, good)
			mutate(d)
			assert.Error(t, sch.Validate(d))
		})
	}
}
