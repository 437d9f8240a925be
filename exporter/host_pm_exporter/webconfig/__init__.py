"""The web configuration: TLS, client certificates, basic auth and extra response headers,
read from a file in the format of Prometheus exporter-toolkit's web-config.yml (what
node_exporter takes with --web.config.file)::

    tls_server_config:
      cert_file: server.crt          # relative paths: to the config file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12             # TLS10, TLS11, TLS12 (the default), TLS13
      max_version: TLS13
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
      prefer_server_cipher_suites: true
    http_server_config:
      headers:
        Strict-Transport-Security: max-age=31536000
    basic_auth_users:
      alice: $2y$10$...

One job per module: `schema` reads and checks the file into objects, `tls` builds the
server's TLS context, `source` keeps the live config (re-read on change or SIGHUP) and
hands out the context for each new connection, `auth` checks basic auth.

Where Python's ssl module cannot do what Go's crypto/tls does, the difference is the
smallest one that is still safe:

- client_auth_type: NoClientCert asks for no certificate, VerifyClientCertIfGiven
  verifies one when given (CERT_OPTIONAL), RequireAndVerifyClientCert requires and
  verifies one (CERT_REQUIRED).  Python verifies every client certificate it asks for,
  so RequestClientCert is served as VerifyClientCertIfGiven and RequireAnyClientCert as
  RequireAndVerifyClientCert; both therefore need client_ca_file, as does any type but
  NoClientCert.  client_ca_file with NoClientCert is loaded and unused (exporter-toolkit
  refuses that).
- cipher_suites take Go's names of the TLS 1.2 suites (ECDHE with AES-GCM, CHACHA20 or
  AES-CBC, and RSA key exchange with AES) and hand OpenSSL its names for them.  TLS 1.3
  suites are not configurable in Python (nor in Go): their names are accepted and have
  no effect.
- min_version TLS10 or TLS11 is accepted, but OpenSSL 3 at its default security level
  has no suite for those versions: such clients are refused all the same.
- No session tickets (see `tls`).
- http_server_config.http2 is accepted and has no effect: the server speaks HTTP/1.1.
- The exporter-toolkit keys cert, key, client_ca (inline PEM), client_allowed_sans and
  curve_preferences are refused as not supported, rather than silently ignored.
- headers: the ones the server sets itself or that would break the framing of a
  response (Content-Length, Transfer-Encoding, Connection, ...) are refused.
- basic_auth_users: bcrypt hashes ($2a$, $2b$, $2y$).
"""

from host_pm_exporter.webconfig.auth import Authenticator, Check
from host_pm_exporter.webconfig.schema import CIPHER_SUITES, WebConfig, WebConfigError
from host_pm_exporter.webconfig.source import WebConfigSource, load_web_config

__all__ = [
    "CIPHER_SUITES",
    "Authenticator",
    "Check",
    "WebConfig",
    "WebConfigError",
    "WebConfigSource",
    "load_web_config",
]
