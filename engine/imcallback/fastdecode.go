package imcallback

import (
	"strconv"
	"unicode/utf8"
)

// decodeFast, whose key switches follow the field table, is generated into
// fields_gen.go; the scanner it drives is here.

// start makes *s empty but not nil, as json.Unmarshal does for [], so that
// both paths give deeply equal bodies.
func start[T any](s *[]T) {
	*s = make([]T, 0, 4)
}

// grow appends a zero element to *s and returns it. It spares spelling out
// body's anonymous element types, which must stay anonymous because
// json.Unmarshal names them in its error messages.
func grow[T any](s *[]T) *T {
	var zero T
	*s = append(*s, zero)
	return &(*s)[len(*s)-1]
}

// fastDecoder is a cursor over the body for decodeFast. Every method
// returns false as soon as the input leaves the accepted shape; nothing
// tells why, because json.Unmarshal then runs and tells it.
type fastDecoder struct {
	s string
	i int
}

// space skips JSON whitespace, which is exactly these four bytes.
func (d *fastDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c if it is next.
func (d *fastDecoder) consume(c byte) bool {
	d.space()
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object reads one object, calling field for each key with the cursor on
// the key's value; field reads the value and returns the key's bit, so that
// a key seen twice is refused: json.Unmarshal would merge the two values,
// which is not worth copying.
func (d *fastDecoder) object(field func(key string) (bit uint32, ok bool)) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	var seen uint32
	for {
		key, ok := d.str()
		if !ok || !d.consume(':') {
			return false
		}
		bit, ok := field(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if d.consume('}') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

// array reads one array, calling elem for each element.
func (d *fastDecoder) array(elem func() bool) bool {
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.consume(']') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

// str reads a string whose bytes are its value: no escapes, no control
// bytes (invalid in JSON) and valid UTF-8, which json.Unmarshal would
// otherwise replace with U+FFFD.
func (d *fastDecoder) str() (string, bool) {
	d.space()
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			v := d.s[start:j]
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			d.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// int reads a JSON integer that fits in bits. A fraction or exponent stops
// the digits and is then refused by the caller, which wants ',', '}' or
// ']' next.
func (d *fastDecoder) int(bits int) (int64, bool) {
	d.space()
	start, j := d.i, d.i
	if j < len(d.s) && d.s[j] == '-' {
		j++
	}
	digits := j
	for j < len(d.s) && '0' <= d.s[j] && d.s[j] <= '9' {
		j++
	}
	if j == digits || d.s[digits] == '0' && j-digits > 1 {
		return 0, false
	}
	v, err := strconv.ParseInt(d.s[start:j], 10, bits)
	if err != nil {
		return 0, false
	}
	d.i = j
	return v, true
}
