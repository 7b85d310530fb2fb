"""A schema-only Terraform provider plugin: enough of the plugin protocol
(version 6) for `terraform init` and `terraform validate`, nothing that
plans or applies.

Terraform starts it as terraform-provider-<name> (scripts/tfschema/tfvalidate.py
lays out a filesystem mirror whose executable runs this file with a schema):

    provider.py SCHEMA.pb

SCHEMA.pb is a serialized tfplugin6 GetProviderSchema.Response, built once
from the provider's published bindings, so this process needs only grpcio
(and cryptography for the TLS Terraform insists on) and answers with bytes:
the schema, empty (= no diagnostics) validation responses, and UNIMPLEMENTED
for everything that would need the real provider.
Terraform core does the validation itself from the schema: unknown and
missing arguments, block nesting and counts, types, references, ephemeral
values outside write-only arguments.
"""
from __future__ import annotations

import base64
import datetime
import os
import shutil
import signal
import sys
import tempfile
import threading
from concurrent import futures

import grpc

# go-plugin's handshake: Terraform sets this cookie; anything else ran us by hand.
MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
PROTOCOL_VERSION = 6

# An empty protobuf message is zero bytes: a response with no diagnostics.
EMPTY = b""
EMPTY_ANSWERS = {
    "ValidateProviderConfig", "ValidateResourceConfig", "ValidateDataResourceConfig",
    "ValidateEphemeralResourceConfig", "ValidateListResourceConfig", "ValidateActionConfig",
    "GetResourceIdentitySchemas", "GetFunctions", "StopProvider",
}


def server_certificate() -> tuple[bytes, bytes, bytes]:
    """A throwaway self-signed certificate for localhost, as go-plugin's own
    plugins make one: Terraform (AutoMTLS) only talks TLS to its plugins,
    trusting the certificate the handshake line carries.
    Returns (key PEM, certificate PEM, certificate DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tfschema"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                                         content_commitment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)


def main(argv: list[str]) -> int:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print("This is a Terraform provider plugin: Terraform runs it, not a person.", file=sys.stderr)
        return 1
    if len(argv) != 2:
        print("usage: provider.py SCHEMA.pb", file=sys.stderr)
        return 2
    versions = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", str(PROTOCOL_VERSION)).split(",")
    if str(PROTOCOL_VERSION) not in versions:
        print(f"Terraform offers plugin protocols {versions}; this plugin speaks {PROTOCOL_VERSION}", file=sys.stderr)
        return 1
    with open(argv[1], "rb") as f:
        schema = f.read()

    # go-plugin plugins ignore interrupts: Terraform itself decides when to stop them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()

    def answer(method: str):
        service, _, name = method.lstrip("/").partition("/")
        if service == "tfplugin6.Provider":
            if name == "GetProviderSchema":
                return lambda request, context: schema
            if name in EMPTY_ANSWERS:
                return lambda request, context: EMPTY
        if service == "plugin.GRPCController" and name == "Shutdown":
            def shutdown(request, context):
                stop.set()
                return EMPTY
            return shutdown
        if service == "grpc.health.v1.Health" and name == "Check":
            return lambda request, context: b"\x08\x01"  # status: SERVING
        return None

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):
            fn = answer(details.method)
            if fn is None:
                def unimplemented(request, context, method=details.method):
                    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                  f"{method}: this schema-only provider only serves init and validate")
                return grpc.unary_unary_rpc_method_handler(unimplemented)
            return grpc.unary_unary_rpc_method_handler(fn)

    socket_dir = tempfile.mkdtemp(prefix="tfschema-", dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None)
    address = os.path.join(socket_dir, "plugin.sock")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[Handler()],
                         options=[("grpc.max_send_message_length", -1),
                                  ("grpc.max_receive_message_length", 64 << 20)])
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "").encode()
    handshake = f"1|{PROTOCOL_VERSION}|unix|{address}|grpc"
    if client_cert:
        key_pem, cert_pem, cert_der = server_certificate()
        # No client certificate is asked for: asked, Terraform sent none to
        # gRPC's TLS (PEER_DID_NOT_RETURN_A_CERTIFICATE). The socket sits in
        # a private temporary directory instead.
        server.add_secure_port(f"unix:{address}", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
        # go-plugin reads the certificate as unpadded base64 of its DER form.
        handshake += "|" + base64.b64encode(cert_der).decode().rstrip("=")
    else:
        server.add_insecure_port(f"unix:{address}")
    server.start()
    # CORE-PROTOCOL|APP-PROTOCOL|NETWORK|ADDRESS|PROTOCOL[|SERVER-CERT]
    sys.stdout.write(handshake + "\n")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Leave with Terraform if it dies without stopping us (no orphans in CI).
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            break
    server.stop(grace=0.5).wait()
    shutil.rmtree(socket_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
