package main

// equalFold reports whether name equals lower, an all-lowercase ASCII field
// name, ignoring ASCII case. Field names are ASCII tokens, so no Unicode
// folding is wanted.
func equalFold(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes is equalFold for two names of unknown case.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isHopByHop reports whether a field belongs to one connection only and so
// must not be forwarded in either direction (RFC 9110 7.6.1, plus the
// Proxy-* and Keep-Alive fields the lab contract lists).
func isHopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 7:
		return equalFold(name, "trailer") || equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "connection") || equalFold(name, "keep-alive")
	case 16:
		return equalFold(name, "proxy-connection")
	case 17:
		return equalFold(name, "transfer-encoding")
	case 18:
		return equalFold(name, "proxy-authenticate")
	case 19:
		return equalFold(name, "proxy-authorization")
	}
	return false
}

// nextToken splits the first element off a comma-separated list value and
// trims the optional whitespace around it.
func nextToken(list []byte) (token, rest []byte) {
	token = list
	for i, c := range list {
		if c == ',' {
			token, rest = list[:i], list[i+1:]
			break
		}
	}
	return trimOWS(token), rest
}

// listsName reports whether the Connection field value v names the field.
func listsName(v, name []byte) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v = nextToken(v)
		if equalFoldBytes(tok, name) {
			return true
		}
	}
	return false
}

// namesFields reports whether the Connection field value v names any field
// beyond the close and keep-alive options, whose fields are dropped anyway.
func namesFields(v []byte) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v = nextToken(v)
		if len(tok) > 0 && !equalFold(tok, "close") && !equalFold(tok, "keep-alive") {
			return true
		}
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
