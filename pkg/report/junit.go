package report

import (
	"encoding/xml"
	"io"
	"strconv"
	"strings"
)

// The JUnit XML shape most CI systems read (Jenkins, GitLab, GitHub actions
// reporters, Azure DevOps): testsuites > testsuite > testcase with
// <failure>, <error> and <system-out>. There is no single official schema;
// this follows the common Ant/Surefire subset.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  *junitText      `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string       `xml:"classname,attr"`
	Name      string       `xml:"name,attr"`
	Time      string       `xml:"time,attr"`
	Failure   *junitResult `xml:"failure,omitempty"`
	Error     *junitResult `xml:"error,omitempty"`
	Skipped   *junitSkip   `xml:"skipped,omitempty"`
	SystemOut *junitText   `xml:"system-out,omitempty"`
}

// junitSkip marks a finding the config file suppressed: CI systems show it
// as skipped, with the reason, instead of failing on it.
type junitSkip struct {
	Message string `xml:"message,attr"`
}

// Bodies are CDATA so multi-line text (remediations, evidence) stays
// readable in the raw file instead of becoming &#xA; and &#34; soup.
// encoding/xml splits any "]]>" inside; cdata() removes the characters XML
// cannot carry, which encoding/xml checks only for escaped text.
type junitResult struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

func systemOut(s string) *junitText {
	if s == "" {
		return nil
	}
	return &junitText{Text: cdata(s)}
}

// cdata makes s legal XML character data: sanitize shows control characters
// as \xNN and replaces invalid UTF-8; the two non-characters XML 1.0 also
// forbids are replaced here.
func cdata(s string) string {
	return strings.NewReplacer("\uFFFE", "\uFFFD", "\uFFFF", "\uFFFD").Replace(sanitize(s))
}

// renderJUnit writes one testsuite per report and one testcase per finding.
// A finding at or above opt.FailOn is a <failure>, an error finding is an
// <error> (the CI distinction between "test failed" and "test could not run"
// is exactly ours), a finding the config file suppressed is <skipped> with
// the reason, and the rest pass. A check that did not apply produces no
// finding, so nothing else is skipped. encoding/xml escapes attribute and text
// content and replaces characters XML cannot carry.
func renderJUnit(w io.Writer, opt Options, reports []*Report) error {
	failOn := opt.failOn()
	out := junitSuites{Name: "mfcheck", Suites: []junitSuite{}}
	var totalMS float64
	for _, r := range reports {
		s := junitSuite{
			Name:  r.Domain,
			Tests: len(r.Findings),
			Time:  seconds(r.DurationMS),
			Cases: make([]junitCase, 0, len(r.Findings)),
		}
		if !r.StartedAt.IsZero() {
			// The Ant schema's timestamp has no zone; UTC by convention.
			s.Timestamp = r.StartedAt.UTC().Format("2006-01-02T15:04:05")
		}
		s.Properties = junitProperties(r)
		var sysout []string
		if r.Simulation {
			sysout = append(sysout, simulationBanner(r))
		}
		for _, n := range r.Notes {
			sysout = append(sysout, "Note: "+n)
		}
		s.SystemOut = systemOut(strings.Join(sysout, "\n"))

		for _, f := range r.Findings {
			c := junitCase{
				Classname: "mfcheck." + f.Area(),
				Name:      strings.TrimSpace(f.ID + " " + f.Subject),
				Time:      "0",
			}
			switch {
			case f.Suppressed != nil:
				c.Skipped = &junitSkip{Message: suppressedText(f.Suppressed)}
				c.SystemOut = systemOut(junitBody(f))
				s.Skipped++
			case f.Status.AtLeast(failOn):
				c.Failure = &junitResult{Message: f.Message, Type: string(f.Status), Body: cdata(junitBody(f))}
				s.Failures++
			case f.Status == StatusError:
				c.Error = &junitResult{Message: f.Message, Type: string(f.Status), Body: cdata(junitBody(f))}
				s.Errors++
			default:
				c.SystemOut = systemOut(junitBody(f))
			}
			s.Cases = append(s.Cases, c)
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
		out.Errors += s.Errors
		totalMS += r.DurationMS
		out.Suites = append(out.Suites, s)
	}
	out.Time = seconds(totalMS)

	ew := &errWriter{w: w}
	io.WriteString(ew, xml.Header)
	enc := xml.NewEncoder(ew)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	io.WriteString(ew, "\n")
	return ew.err
}

func junitProperties(r *Report) []junitProperty {
	ps := []junitProperty{{"schema", r.Schema}}
	if r.Tool.Version != "" {
		ps = append(ps, junitProperty{"tool.version", r.Tool.Version})
	}
	ps = append(ps, junitProperty{"mode", r.Mode})
	if r.Profile != "" {
		ps = append(ps, junitProperty{"profile", r.Profile})
	}
	if r.Simulation {
		ps = append(ps, junitProperty{"simulation", "true"})
	}
	return ps
}

// junitBody is the text CI systems show when a test case is opened: the
// status, the message, the remediation and the evidence as compact lines.
func junitBody(f Finding) string {
	lines := []string{string(f.Status) + ": " + f.Message}
	if f.Remediation != "" {
		lines = append(lines, "Remediation: "+f.Remediation)
	}
	if len(f.Evidence) > 0 {
		lines = append(lines, "Evidence:")
		for _, l := range evidenceLines(f.Evidence, 1000) {
			lines = append(lines, "  "+l)
		}
	}
	return strings.Join(lines, "\n")
}

func seconds(ms float64) string {
	return strconv.FormatFloat(ms/1000, 'f', 3, 64)
}
