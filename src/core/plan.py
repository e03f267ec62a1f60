"""From a snapshot of what Juju knows to what one Trino node should look like."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import TYPE_CHECKING, Any

from core import truststore
from core.catalogs import CERTS_DIR, CatalogSet
from core.config import CharmConfig, Role
from core.exchange import FaultTolerance
from core.observability import JMX_OBJECT_NAMES, METRICS_USER, tracing_properties
from core.render import render
from core.security import LDAP_AUTHENTICATOR, Ldap, authentication, merge_rules
from core.shutdown import (
    DRAIN_CA,
    DRAIN_CONFIG,
    WORKER_COMMAND,
    WORKER_SCRIPT,
    go_duration,
    kill_delay_seconds,
    worker_script,
)

if TYPE_CHECKING:
    from core.oauth import OAuthProvider

ETC = "/etc/trino"
CATALOG_DIR = f"{ETC}/catalog"
DATA_DIR = "/data/trino"
HTTP_PORT = 8080
HTTPS_PORT = 8443
PASSWORD_DB = f"{ETC}/password.db"
RULES_FILE = f"{ETC}/rules.json"
KEYSTORE = f"{ETC}/keystore.pem"
EXCHANGE_MANAGER = f"{ETC}/exchange-manager.properties"
PASSWORD_AUTHENTICATOR = f"{ETC}/password-authenticator.properties"
LDAP_AUTHENTICATOR_FILE = f"{ETC}/password-authenticator-ldap.properties"
GROUP_PROVIDER = f"{ETC}/group-provider.properties"
GROUP_FILE = f"{ETC}/groups.txt"
# Files Trino reads again by itself (file.refresh-period, security.refresh-period):
# changing them must never restart Trino.
RELOADED_FILES = (PASSWORD_DB, RULES_FILE, GROUP_FILE)
# A change Pebble applies by itself (the check runs on its new definition): no restart.
CHECK_CHANGE = "Pebble check"
# Trino's file managers of resource groups and session property defaults (coordinator
# only). Trino finds each `.properties` at `etc/<name>` from its data dir (the launcher
# links etc there) and reads each JSON once, at start: a change restarts Trino.
RESOURCE_GROUPS_PROPERTIES = f"{ETC}/resource-groups.properties"
RESOURCE_GROUPS_JSON = f"{ETC}/resource-groups.json"
SESSION_PROPERTIES_PROPERTIES = f"{ETC}/session-property-config.properties"
SESSION_PROPERTIES_JSON = f"{ETC}/session-property-config.json"
# Files written only in some setups (authentication, LDAP, groups, HTTPS, resource
# groups, session property rules, an exchange, workers): removed when not planned.
OPTIONAL_FILES = (
    PASSWORD_AUTHENTICATOR,
    PASSWORD_DB,
    KEYSTORE,
    RESOURCE_GROUPS_PROPERTIES,
    RESOURCE_GROUPS_JSON,
    SESSION_PROPERTIES_PROPERTIES,
    SESSION_PROPERTIES_JSON,
    EXCHANGE_MANAGER,
    LDAP_AUTHENTICATOR_FILE,
    GROUP_PROVIDER,
    GROUP_FILE,
    WORKER_SCRIPT,
    DRAIN_CONFIG,
    DRAIN_CA,
)
# Files only the worker script reads, on SIGTERM: changing them never restarts Trino.
SHUTDOWN_FILES = (DRAIN_CONFIG, DRAIN_CA)
# Juju mounts its Pebble into every workload container, with the socket beside it.
PEBBLE = "/charm/bin/pebble"
PEBBLE_SOCKET = "/charm/container/pebble.socket"
SERVICE = "trino"
CHECK = "trino-ready"
LAUNCHER = "/usr/lib/trino/bin/launcher run --etc-dir /etc/trino"
HEALTH_CHECK = "/usr/lib/trino/bin/health-check"
# Pebble notices the check sends when Trino becomes ready or stops being ready:
# Juju turns each into a `pebble-custom-notice` hook, so the charm hears within a
# check period instead of at the next update-status.
NOTICE_PREFIX = "trino-k8s.charm/"
NOTICE_READY = f"{NOTICE_PREFIX}ready"
NOTICE_NOT_READY = f"{NOTICE_PREFIX}not-ready"
# The last answer sent: /tmp starts empty with each container, as Pebble's notices do.
READY_STATE = "/tmp/trino-k8s-charm-ready"  # noqa: S108
CHECK_PERIOD = "2s"
# The charm's own Trino user (draining workers, reading metrics). Its rules come
# first in rules.json so operator rules can never lock the charm out.
CHARM_USER = "trino-k8s-charm"

PUBLIC = 0o644
SECRET = 0o600


@dataclasses.dataclass(frozen=True)
class Cluster:
    """What every node of one Trino cluster must share."""

    environment: str  # node.environment
    discovery_uri: str  # where workers announce themselves
    shared_secret: str = dataclasses.field(repr=False)  # internal-communication.shared-secret


@dataclasses.dataclass(frozen=True)
class Security:
    """How clients reach this node and prove who they are."""

    # Trino's password.db; empty: no authentication.
    password_db: str = ""
    # PEM private key + certificate chain; empty: no HTTPS.
    keystore: str = ""
    # Trust X-Forwarded-* headers (an ingress terminates TLS in front of Trino).
    process_forwarded: bool = False
    # Operator rules (access-control-rules), merged after the charm's own.
    operator_rules: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The charm user's password (in password.db as a hash): the charm drains with it.
    charm_password: str = dataclasses.field(default="", repr=False)
    # Single sign-on (the oauth relation): OAuth2 for browsers, JWT bearer tokens.
    oauth: OAuthProvider | None = None
    # An LDAP server checks the passwords password.db does not know (coordinator only).
    ldap: Ldap | None = None
    # Trino's group file (`group:user,...` lines); empty: LDAP groups, if LDAP can search.
    group_file: str = dataclasses.field(default="", repr=False)

    @property
    def authentication(self):
        """The authentication types and the password authenticators, in order."""
        return authentication(
            password_file=bool(self.password_db),
            ldap=self.ldap is not None,
            oauth=self.oauth is not None,
        )


@dataclasses.dataclass(frozen=True)
class NodeInputs:
    """Everything a node's files depend on, gathered by the charm in one place."""

    config: CharmConfig
    model_name: str
    unit_name: str
    catalogs: CatalogSet = dataclasses.field(default_factory=lambda: CatalogSet({}, []))
    # None until the coordinator (or, on a coordinator, its leader) has shared it.
    cluster: Cluster | None = None
    # Why there is no cluster yet, for the operator (a worker without coordinator...).
    cluster_problem: str = ""
    # The coordinator runs on the leader alone; other units of its application stand by.
    leader: bool = True
    leader_unit: str = ""
    tracing_endpoint: str = ""  # OTLP gRPC receiver from the tracing relation; empty: off
    # The system's CAs (PEM): a truststore that adds the catalogs' CAs keeps them.
    system_cas: str = dataclasses.field(default="", repr=False)
    security: Security = dataclasses.field(default_factory=Security)
    # Operator input about access that must be fixed before anything is applied.
    access_problems: tuple[str, ...] = ()
    # retry-policy and the exchange (a worker's come from its coordinator).
    fault_tolerance: FaultTolerance = dataclasses.field(default_factory=FaultTolerance)

    @property
    def jvm_cas(self) -> str:
        """CAs the whole JVM must trust (PEM): catalogs', the LDAP server's, the OIDC provider's.

        The LDAP CA goes there, not in `ldap.ssl.truststore.path`: with that property
        Trino 476's LDAP group provider fails every search ("SSLContext was not set")
        and users silently get no groups.
        """
        ldap, provider = self.security.ldap, self.security.oauth
        return (
            self.catalogs.jvm_cas + (ldap.ca if ldap else "") + (provider.ca if provider else "")
        )


@dataclasses.dataclass(frozen=True)
class File:
    """A file the charm owns in the workload container."""

    # bytes: a binary file (the JVM truststore). Not in repr: many files hold a secret.
    content: str | bytes = dataclasses.field(repr=False)
    mode: int = PUBLIC

    @property
    def data(self) -> bytes:
        """The file's bytes."""
        return self.content.encode() if isinstance(self.content, str) else self.content


@dataclasses.dataclass(frozen=True)
class Plan:
    """The desired node: its files, its Pebble layer, or why it cannot run yet."""

    files: dict[str, File]
    layer: dict[str, Any]
    waiting: str | None = None  # set when the node must not run yet; files are then empty
    # Folders whose every file is the charm's: a file there not in `files` is removed.
    exclusive_dirs: tuple[str, ...] = (CATALOG_DIR, CERTS_DIR)
    # Files of the charm's that must not stay once the plan no longer has them.
    optional_files: tuple[str, ...] = OPTIONAL_FILES


def node_environment(model_name: str) -> str:
    """A `node.environment` Trino accepts (``[a-z0-9][_a-z0-9]*``), from the model name."""
    name = re.sub(r"[^a-z0-9_]", "_", model_name.lower())
    return name if re.match(r"^[a-z0-9]", name) else f"juju{name}"


def node_id(unit_name: str) -> str:
    """A stable, unique `node.id` (``trino/0`` is invalid, ``trino-0`` is fine)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", unit_name)


def pebble_layer(worker_grace_seconds: float | None = None) -> dict[str, Any]:
    """Pebble runs the launcher, which execs the JVM, so Pebble supervises Trino itself.

    A worker (``worker_grace_seconds``: its graceful-shutdown-period) runs it
    through the script that drains it on SIGTERM (`core.shutdown`), and Pebble
    waits long enough for the drain before SIGKILL.
    """
    service: dict[str, Any] = {
        "override": "replace",
        "summary": "Trino server",
        "command": LAUNCHER,
        "startup": "enabled",
        "user": "trino",
        "group": "trino",
    }
    if worker_grace_seconds is not None:
        service["command"] = WORKER_COMMAND
        service["kill-delay"] = go_duration(kill_delay_seconds(worker_grace_seconds))
    return {
        "summary": "Trino",
        "services": {SERVICE: service},
        "checks": {
            CHECK: {
                "override": "replace",
                "level": "ready",
                "period": CHECK_PERIOD,
                "timeout": "1.5s",  # as Pebble writes it back: the plan compares equal
                "threshold": 3,
                # Passes only once /v1/info says "starting": false; tells the charm on a change.
                # As Pebble's own user: Juju 3.6 before 3.6.25 delivers only its notices.
                "exec": {
                    "command": ready_check_command(),
                    "environment": {"PEBBLE_SOCKET": PEBBLE_SOCKET},
                },
            }
        },
    }


def ready_check_command() -> str:
    """The image's health check, plus a Pebble notice whenever its answer changes.

    Only a change is sent (the last one is kept in ``READY_STATE``): a notice per
    check period would be a hook per check period. Before the first "ready" the
    state counts as not ready, so a starting node sends nothing until it is ready.
    """
    script = "; ".join(
        [
            f"if {HEALTH_CHECK}; then now=ready; else now=not-ready; fi",
            f"was=$(cat {READY_STATE} 2>/dev/null || echo not-ready)",
            '[ "$was" = "$now" ] || { '
            f"{PEBBLE} notify {NOTICE_PREFIX}$now && echo $now > {READY_STATE}; }}",
            '[ "$now" = ready ]',
        ]
    )
    return f"/bin/sh -c '{script}'"


def access_rules() -> dict[str, Any]:
    """File access control rules: the charm's own users first, then everyone else.

    System information (metrics, graceful shutdown) is denied to everyone but
    the charm's user and the metrics user, which may only read it (Prometheus
    scrapes /metrics as that user; see `core.observability` for why it is not
    Trino's `management.user`). Those two users get no data at all; everyone
    else keeps the data access Trino's default access control grants. Nobody
    may impersonate them, whatever impersonation the operator's rules allow
    (BI tools usually get "anyone may become anyone").
    """
    internal = f"{CHARM_USER}|{METRICS_USER}"
    return {
        "system_information": [
            {"user": CHARM_USER, "allow": ["read", "write"]},
            {"user": METRICS_USER, "allow": ["read"]},
        ],
        # Least privilege: the charm's own users never read data (merge_rules adds the
        # allow-all that keeps Trino's default for everyone else).
        "catalogs": [{"user": internal, "allow": "none"}],
        "impersonation": [{"original_user": ".*", "new_user": internal, "allow": False}],
    }


def _oauth_properties(provider: OAuthProvider | None) -> dict[str, str]:
    """Trino's OAuth2 and JWT properties (none without single sign-on)."""
    if provider is None:
        return {}
    from core.oauth import properties  # noqa: PLC0415  (only with single sign-on)

    return properties(provider)


def idle_reason(inputs: NodeInputs) -> str | None:
    """Why this unit must not run Trino now, or None when it should."""
    if inputs.config.role is Role.WORKER:
        if inputs.cluster is None:
            return inputs.cluster_problem or "waiting for a coordinator"
        return None
    if not inputs.leader:
        leader = inputs.leader_unit or "the leader"
        return (
            f"standby: {leader} runs the coordinator (a cluster has one); this unit takes "
            "over if it goes. Scale workers with a charm-function=worker application"
        )
    if inputs.cluster is None:
        return inputs.cluster_problem or "waiting for the cluster secret"
    return None


def plan_node(inputs: NodeInputs) -> Plan:
    """The files and layer of one node, or why it must wait."""
    config = inputs.config
    waiting = idle_reason(inputs)
    if waiting or inputs.cluster is None:
        return Plan(files={}, layer={}, waiting=waiting or "waiting for the cluster")
    cluster = inputs.cluster
    coordinator = config.role in (Role.ALL, Role.COORDINATOR)
    files = {
        f"{ETC}/node.properties": render(
            "node.properties",
            environment=cluster.environment,
            node_id=node_id(inputs.unit_name),
            data_dir=DATA_DIR,
        ),
        f"{ETC}/jvm.config": render(
            "jvm.config",
            flags=[*config.jvm_flags, *(truststore.FLAGS if inputs.jvm_cas else ())],
        ),
        f"{ETC}/config.properties": render(
            "config.properties",
            coordinator=coordinator,
            include_coordinator=config.role is Role.ALL,
            http_port=HTTP_PORT,
            discovery_uri=f"http://localhost:{HTTP_PORT}"
            if coordinator
            else cluster.discovery_uri,
            shared_secret=cluster.shared_secret,
            grace_period=config.graceful_shutdown_period.strip(),
            query_max_memory=config.query_max_memory.strip(),
            query_max_memory_per_node=config.query_max_memory_per_node.strip(),
            jmx_object_names="|".join(JMX_OBJECT_NAMES),
            tracing=tracing_properties(inputs.tracing_endpoint),
            https_port=HTTPS_PORT if inputs.security.keystore else None,
            keystore=KEYSTORE,
            authentication_types=list(inputs.security.authentication.types),
            password_authenticators=[
                AUTHENTICATOR_FILES[name]
                for name in inputs.security.authentication.password_authenticators
            ],
            oauth=_oauth_properties(inputs.security.oauth),
            metrics_user=METRICS_USER,
            process_forwarded=inputs.security.process_forwarded,
            overrides=config.overrides,
            retry_policy=inputs.fault_tolerance.policy,
        ),
        f"{ETC}/log.properties": render("log.properties", level=config.log_level.strip().upper()),
        f"{ETC}/access-control.properties": render(
            "access-control.properties", rules_path=f"{ETC}/rules.json", refresh_period="5s"
        ),
        RULES_FILE: json.dumps(
            merge_rules(access_rules(), inputs.security.operator_rules), indent=2, sort_keys=True
        )
        + "\n",
    }
    plan_files = {path: File(content) for path, content in files.items()}
    # config.properties holds the cluster's shared secret (and the OAuth client secret).
    plan_files[f"{ETC}/config.properties"] = File(files[f"{ETC}/config.properties"], mode=SECRET)
    plan_files.update(_security_files(inputs.security))
    worker_grace = None
    if config.role is Role.WORKER:
        worker_grace = config.grace_seconds
        plan_files[WORKER_SCRIPT] = File(worker_script(LAUNCHER, worker_grace))
    layer = pebble_layer(worker_grace)
    if coordinator:
        plan_files.update(_manager_files(config))
    if inputs.fault_tolerance.exchange:
        # The bucket's keys: only Trino may read it.
        plan_files[EXCHANGE_MANAGER] = File(
            render(
                "catalog.properties",
                source="exchange-s3",
                properties=inputs.fault_tolerance.exchange,
            ),
            mode=SECRET,
        )
    if inputs.jvm_cas:
        ders = truststore.certificates(inputs.jvm_cas + inputs.system_cas)
        plan_files[truststore.TRUSTSTORE] = File(truststore.jks(ders))
    if inputs.catalogs.problems:
        # Keep whatever catalog files are in place: the last good set.
        return Plan(files=plan_files, layer=layer, exclusive_dirs=())
    for name, catalog in inputs.catalogs.catalogs.items():
        # Every catalog file may hold credentials: only Trino may read it.
        plan_files[f"{CATALOG_DIR}/{name}.properties"] = File(
            render("catalog.properties", source=catalog.source, properties=catalog.properties),
            mode=SECRET,
        )
        for path, content in catalog.files.items():
            plan_files[path] = File(content, mode=SECRET)
    return Plan(files=plan_files, layer=layer)


def _manager_files(config: CharmConfig) -> dict[str, File]:
    """Trino's file-based resource groups and session property rules, when configured."""
    files = {}
    for option, text, properties, manager, key, path in (
        (
            "resource-groups",
            config.resource_groups,
            RESOURCE_GROUPS_PROPERTIES,
            "resource-groups.configuration-manager",
            "resource-groups.config-file",
            RESOURCE_GROUPS_JSON,
        ),
        (
            "session-properties",
            config.session_properties,
            SESSION_PROPERTIES_PROPERTIES,
            "session-property-config.configuration-manager",
            "session-property-manager.config-file",
            SESSION_PROPERTIES_JSON,
        ),
    ):
        if text.strip():
            settings = {manager: "file", key: path}
            files[properties] = File(
                render("catalog.properties", source=option, properties=settings)
            )
            files[path] = File(json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n")
    return files


AUTHENTICATOR_FILES = {"file": PASSWORD_AUTHENTICATOR, LDAP_AUTHENTICATOR: LDAP_AUTHENTICATOR_FILE}


def _security_files(security: Security) -> dict[str, File]:
    """The authenticators and their files, groups, and the HTTPS keystore: all 0600."""
    files = {}
    if security.password_db:
        files[PASSWORD_AUTHENTICATOR] = File(
            render("password-authenticator.properties", password_file=PASSWORD_DB)
        )
        files[PASSWORD_DB] = File(security.password_db, mode=SECRET)
    if security.keystore:
        files[KEYSTORE] = File(security.keystore, mode=SECRET)
    ldap = security.ldap
    if ldap is not None:
        files[LDAP_AUTHENTICATOR_FILE] = _properties("LDAP", ldap.authenticator())
    if security.group_file:  # an operator's explicit groups win over LDAP's
        files[GROUP_PROVIDER] = _properties(
            "groups",
            {
                "group-provider.name": "file",
                "file.group-file": GROUP_FILE,
                "file.refresh-period": "5s",  # group changes need no restart
            },
        )
        files[GROUP_FILE] = File(security.group_file, mode=SECRET)
    elif ldap is not None and ldap.can_search:
        files[GROUP_PROVIDER] = _properties("LDAP groups", ldap.group_provider())
    return files


def _properties(source: str, properties: dict[str, str]) -> File:
    """A properties file only Trino may read (it may hold a password)."""
    return File(render("catalog.properties", source=source, properties=properties), mode=SECRET)
