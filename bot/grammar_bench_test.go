package bot

import (
	"fmt"
	"strings"
	"testing"
)

// commandOfSize is a migrate of as many VMs as fit in about n bytes, listed as people
// paste them: "vm-00001, vm-00002, …" (a space after each comma, so every name is a token
// the lexer joins to the list).
func commandOfSize(n int) string {
	var b strings.Builder
	b.WriteString("migrate ")
	for i := 1; b.Len() < n-len(" to vc-west"); i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "vm-%05d", i)
	}
	b.WriteString(" to vc-west")
	return b.String()
}

// BenchmarkParseCommand shows that parsing grows linearly with the text: 70 KB costs
// about 70 times what 1 KB does.
func BenchmarkParseCommand(b *testing.B) {
	for _, size := range []int{1 << 10, 10 << 10, 70 << 10} {
		text := commandOfSize(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseCommand(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
