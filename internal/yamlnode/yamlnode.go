// Package yamlnode holds what the YAML readers (profiles, config) share
// about yaml.v3 nodes.
package yamlnode

import "gopkg.in/yaml.v3"

// IsNull reports an explicit or empty null scalar.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// KindName says what a node is, for messages such as "want a list, got a
// mapping".
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "nothing (null)"
		}
		return "a single value"
	}
	return "something else"
}
