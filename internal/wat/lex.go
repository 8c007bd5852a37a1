package wat

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error is a syntax or semantic error in WAT source. Line and Col are
// 1-based; Col counts runes (UTF-8 code points) from the start of the line.
type Error struct {
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("wat: %d:%d: %s", e.Line, e.Col, e.Msg)
}

// pos is a source position.
type pos struct{ line, col int }

func (p pos) String() string { return fmt.Sprintf("%d:%d", p.line, p.col) }

func errorf(p pos, format string, args ...any) *Error {
	return &Error{Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, args...)}
}

// maxDepth bounds parenthesis nesting so that deeply nested (hostile) input
// cannot exhaust the stack of the recursive parts of the compiler.
const maxDepth = 1000

// node is an S-expression: a list, a string literal or an atom (keyword,
// identifier, number).
type node struct {
	pos  pos
	end  pos // lists: position of the closing ')'
	list bool
	str  bool    // string literal; text holds the decoded bytes
	text string  // atom text or decoded string
	kids []*node // list children
}

// head returns the keyword at the start of a list, or "".
func (n *node) head() string {
	if n == nil || !n.list || len(n.kids) == 0 {
		return ""
	}
	k := n.kids[0]
	if k.list || k.str {
		return ""
	}
	return k.text
}

// isKeyword reports whether n is an atom starting with a lowercase letter.
func (n *node) isKeyword() bool {
	return n != nil && !n.list && !n.str && n.text != "" && n.text[0] >= 'a' && n.text[0] <= 'z'
}

// isID reports whether n is an identifier atom ($name).
func (n *node) isID() bool {
	return n != nil && !n.list && !n.str && len(n.text) > 1 && n.text[0] == '$'
}

// isAtom reports whether n is a non-string atom.
func (n *node) isAtom() bool { return n != nil && !n.list && !n.str }

// describe renders n for error messages.
func (n *node) describe() string {
	switch {
	case n == nil:
		return "end of list"
	case n.list:
		if h := n.head(); h != "" {
			return fmt.Sprintf("(%s ...)", h)
		}
		return "list"
	case n.str:
		return "string"
	default:
		return fmt.Sprintf("%q", n.text)
	}
}

func isIDChar(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return true
	}
	return strings.IndexByte("!#$%&'*+-./:<=>?@\\^_`|~", c) >= 0
}

type lexer struct {
	src       string
	off       int
	line      int
	lineStart int
	// Column cache: colOff on the current line is at column col, so that
	// computing positions stays linear on very long lines.
	colOff, col int
}

func (l *lexer) pos() pos {
	if l.colOff < l.lineStart || l.colOff > l.off {
		l.colOff, l.col = l.lineStart, 1
	}
	l.col += utf8.RuneCountInString(l.src[l.colOff:l.off])
	l.colOff = l.off
	return pos{line: l.line, col: l.col}
}

// advance moves past one byte, tracking lines.
func (l *lexer) advance() {
	if l.src[l.off] == '\n' {
		l.line++
		l.lineStart = l.off + 1
	}
	l.off++
}

// skipSpace skips whitespace and comments.
func (l *lexer) skipSpace() error {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.advance()
		case c == ';' && l.off+1 < len(l.src) && l.src[l.off+1] == ';':
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.off++
			}
		case c == '(' && l.off+1 < len(l.src) && l.src[l.off+1] == ';':
			start := l.pos()
			l.off += 2
			depth := 1
			for depth > 0 {
				if l.off >= len(l.src) {
					return errorf(start, "unterminated block comment")
				}
				switch {
				case strings.HasPrefix(l.src[l.off:], "(;"):
					depth++
					l.off += 2
				case strings.HasPrefix(l.src[l.off:], ";)"):
					depth--
					l.off += 2
				default:
					l.advance()
				}
			}
		default:
			return nil
		}
	}
	return nil
}

// parse turns src into a list of top-level nodes.
func parse(src string) ([]*node, error) {
	l := &lexer{src: src, line: 1, col: 1}
	root := &node{list: true}
	stack := []*node{root}
	for {
		if err := l.skipSpace(); err != nil {
			return nil, err
		}
		top := stack[len(stack)-1]
		if l.off >= len(l.src) {
			if len(stack) > 1 {
				return nil, errorf(top.pos, "unbalanced parentheses: '(' is never closed")
			}
			return root.kids, nil
		}
		p := l.pos()
		c := l.src[l.off]
		switch {
		case c == '(':
			if len(stack) > maxDepth {
				return nil, errorf(p, "nesting deeper than %d levels", maxDepth)
			}
			n := &node{pos: p, list: true}
			top.kids = append(top.kids, n)
			stack = append(stack, n)
			l.off++
		case c == ')':
			if len(stack) == 1 {
				return nil, errorf(p, "unbalanced parentheses: unexpected ')'")
			}
			top.end = p
			stack = stack[:len(stack)-1]
			l.off++
		case c == '"':
			s, err := l.lexString()
			if err != nil {
				return nil, err
			}
			if l.off < len(l.src) && (isIDChar(l.src[l.off]) || l.src[l.off] == '"') {
				return nil, errorf(l.pos(), "missing space after string")
			}
			top.kids = append(top.kids, &node{pos: p, str: true, text: s})
		case isIDChar(c):
			start := l.off
			for l.off < len(l.src) && isIDChar(l.src[l.off]) {
				l.off++
			}
			if l.off < len(l.src) && l.src[l.off] == '"' {
				return nil, errorf(l.pos(), "missing space before string")
			}
			top.kids = append(top.kids, &node{pos: p, text: l.src[start:l.off]})
		default:
			r, _ := utf8.DecodeRuneInString(l.src[l.off:])
			return nil, errorf(p, "unexpected character %q", r)
		}
	}
}

func hexVal(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// lexString reads a string literal starting at the opening quote and returns
// its decoded bytes.
func (l *lexer) lexString() (string, error) {
	start := l.pos()
	l.off++ // opening quote
	var b strings.Builder
	for {
		if l.off >= len(l.src) {
			return "", errorf(start, "unterminated string")
		}
		c := l.src[l.off]
		switch {
		case c == '"':
			l.off++
			return b.String(), nil
		case c == '\n':
			return "", errorf(start, "unterminated string (newline in string; use \\n)")
		case c < 0x20 || c == 0x7f:
			return "", errorf(l.pos(), "control character %q in string; use an escape", c)
		case c != '\\':
			b.WriteByte(c)
			l.off++
			continue
		}
		escPos := l.pos()
		l.off++
		if l.off >= len(l.src) {
			return "", errorf(start, "unterminated string")
		}
		e := l.src[l.off]
		l.off++
		switch e {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '"', '\'', '\\':
			b.WriteByte(e)
		case 'u':
			if l.off >= len(l.src) || l.src[l.off] != '{' {
				return "", errorf(escPos, "invalid \\u escape: expected \\u{hex}")
			}
			l.off++
			r, digits := 0, 0
			for l.off < len(l.src) && l.src[l.off] != '}' {
				v, ok := hexVal(l.src[l.off])
				if !ok && l.src[l.off] == '_' && digits > 0 {
					l.off++
					continue
				}
				if !ok {
					return "", errorf(escPos, "invalid \\u escape: expected \\u{hex}")
				}
				r = r*16 + v
				digits++
				if r > utf8.MaxRune {
					return "", errorf(escPos, "invalid \\u escape: code point out of range")
				}
				l.off++
			}
			if l.off >= len(l.src) || digits == 0 {
				return "", errorf(escPos, "invalid \\u escape: expected \\u{hex}")
			}
			l.off++ // '}'
			if r >= 0xD800 && r < 0xE000 {
				return "", errorf(escPos, "invalid \\u escape: surrogate code point")
			}
			b.WriteRune(rune(r))
		default:
			hi, ok1 := hexVal(e)
			var lo int
			ok2 := false
			if l.off < len(l.src) {
				lo, ok2 = hexVal(l.src[l.off])
			}
			if !ok1 || !ok2 {
				return "", errorf(escPos, "invalid escape sequence in string")
			}
			l.off++
			b.WriteByte(byte(hi<<4 | lo))
		}
	}
}
