package report

import (
	"encoding/json"
	"errors"
	"io"
)

// renderJSON writes one report as an indented document, several as JSON
// Lines, so `--output json` on one domain is readable and on many is
// streamable (jq -c, line-oriented log shippers).
func renderJSON(w io.Writer, reports []*Report) error {
	if len(reports) == 1 {
		enc := newJSONEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(reports[0])
	}
	for _, r := range reports {
		if err := newJSONEncoder(w).Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSONLine writes r as one compact JSON document and a newline, for bulk
// runs that stream reports as they finish instead of holding them all. Like
// Render it writes a finalized copy and leaves r as it is.
func WriteJSONLine(w io.Writer, r *Report) error {
	if r == nil {
		return errors.New("report: WriteJSONLine: nil report")
	}
	return newJSONEncoder(w).Encode(r.finalized())
}

// newJSONEncoder turns off HTML escaping: the output is not embedded in
// HTML, and "<", ">" and "&" occur in mail evidence (addresses, SMTP
// replies) where \u003c would only hinder grep.
func newJSONEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
