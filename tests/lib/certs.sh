# certs.sh: test certificates made with openssl(1), sourced by the shell
# tests that run a loopback HTTPS server (tests/agent, tests/kvclient).

# mkcerts DIR CA-CN SERVER-CN SAN: DIR/ca.pem (key ca.key), a P-256 CA
# good for two days, and DIR/srv.pem (key srv.key, mode 600) that it
# signs for serverAuth with subjectAltName SAN ("IP:127.0.0.1,DNS:...").
mkcerts() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1/ca.key" -out "$1/ca.pem" -days 2 -subj "/CN=$2" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1/srv.key" -out "$1/srv.csr" -subj "/CN=$3" 2>/dev/null
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$4" >"$1/ext"
	openssl x509 -req -in "$1/srv.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" \
	    -CAcreateserial -out "$1/srv.pem" -days 2 -extfile "$1/ext" 2>/dev/null
	chmod 600 "$1/srv.key"
}

# mkotherca DIR: DIR/other.pem (key other.key), a CA that signed nothing
# here, for a client given the wrong trust anchor.
mkotherca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1/other.key" -out "$1/other.pem" -days 2 -subj "/CN=other" \
	    2>/dev/null
}
