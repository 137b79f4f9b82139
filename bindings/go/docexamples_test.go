package sqlitequota_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The Go examples of this package's README.md and of the repository's
// doc/clients.md run as written. Every ```go block is a whole program
// (package main) unless the line before it (blank lines aside) is
// <!-- doc-test: skip REASON -->. Each program is built in a module of its
// own that uses this package through a replace directive, and run in an
// empty directory; when an ```output block follows it (blank lines aside),
// its output must be exactly that block. go test -short skips them.
func TestDocExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goSum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	module := regexp.MustCompile(`(?m)^module (\S+)`).FindSubmatch(goMod)[1]
	mattn := regexp.MustCompile(`(?m)github.com/mattn/go-sqlite3 (v\S+)`).FindSubmatch(goMod)[1]
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}

	total := 0
	for _, file := range []string{"README.md", "../../doc/clients.md"} {
		blocks, err := goBlocks(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			total++
			name := fmt.Sprintf("%s:%d", filepath.Base(file), b.line)
			t.Run(name, func(t *testing.T) {
				if b.skip != "" {
					t.Skip(b.skip)
				}
				if !strings.Contains(b.code, "package main") {
					t.Fatalf("not a whole program: make it one, or put <!-- doc-test: skip REASON --> before it")
				}
				dir := t.TempDir()
				mod := fmt.Sprintf("module doctest\n\ngo 1.22\n\nrequire (\n\t%s v0.0.0\n\tgithub.com/mattn/go-sqlite3 %s\n)\n\nreplace %s => %s\n",
					module, mattn, module, here)
				for f, text := range map[string]string{"go.mod": mod, "go.sum": string(goSum), "main.go": b.code} {
					if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, goTool, "run", ".")
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod -modcacherw")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("go run: %v\n%s", err, out)
				}
				if b.output != nil && string(out) != *b.output {
					t.Fatalf("output:\n%s\nthe doc says:\n%s", out, *b.output)
				}
			})
		}
	}
	if total == 0 {
		t.Fatal("no ```go block found in the docs")
	}
}

type goBlock struct {
	line   int     // line of the opening fence
	code   string  // the program
	skip   string  // the reason, when marked doc-test: skip
	output *string // the ```output block after it, if any
}

// goBlocks returns the ```go blocks of a Markdown file.
func goBlocks(file string) ([]goBlock, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	skipRe := regexp.MustCompile(`^<!-- doc-test: skip (.*?) *-->$`)
	var blocks []goBlock
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```go" {
			continue
		}
		b := goBlock{line: i + 1}
		for j := i - 1; j >= 0; j-- {
			if strings.TrimSpace(lines[j]) == "" {
				continue
			}
			if m := skipRe.FindStringSubmatch(lines[j]); m != nil {
				b.skip = m[1]
			}
			break
		}
		var code []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			code = append(code, lines[i])
		}
		b.code = strings.Join(code, "\n") + "\n"
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j < len(lines) && lines[j] == "```output" {
			var out []string
			for j++; j < len(lines) && lines[j] != "```"; j++ {
				out = append(out, lines[j])
			}
			text := strings.Join(out, "\n") + "\n"
			b.output = &text
			i = j
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}
