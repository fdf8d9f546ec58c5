package profile
import ("testing";"fmt")
func TestTmp(t *testing.T){
  for _, id := range []string{"mimecast-uk","mimecast","mimecast-ue","microsoft-365","zzz"} { _, err := Builtin().Get(id); fmt.Println(err) }
  _, err := (&Registry{}).With(&Profile{ID:"Bad_ID", Kind:"relay"}, &Profile{ID:"x", Name:"x", Kind:"gateway", SPFIncludes: []string{"a:foo.com", "include:x.com"}, SPFTerms: []string{"include:x.com","v=spf1","foo:bar", "exists", "ip4:1.2.3.4"}, MXHosts: []string{"*.com"}, Uncertain: []string{"mx_host", "notes", "spf_terms:ip4:1.2.3.5"}})
  fmt.Println(err)
}
