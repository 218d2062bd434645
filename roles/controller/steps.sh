# shellcheck shell=sh
# StackOps node agent: controller steps (reference/lucid-and-nova.md §4.3, §4.5, §4.6): MySQL
# bound to the controller address, the nova database, RabbitMQ, Glance, the schema, the admin
# user and project, the fixed network, and nova-api/-scheduler/-objectstore.
# shellcheck disable=SC2154 # answers are set by so_answers_load

# MySQL listens on every address (lucid's my.cnf binds 127.0.0.1), as StackOps did: bound to the
# controller's DHCP address it could not start before the lease, nor after a new one (issue 22
# item 6). Only nova's own user may log in from elsewhere (so_step_nova_db). Its root user has
# the answered password. lucid's mysql-server-5.1 sets root's password from debconf only when the
# preseed gives one (docs/nova-2011.2-facts.md §9.1); a disc built without a deployment file
# preseeds it empty, so root starts without a password and this step sets it.
so_step_mysql() {
    _cnf=$(so_mysql_bind_file) ||
        { so_fail "no bind-address line under /etc/mysql (is mysql-server installed?)"; return 1; }
    if ! grep -q "^bind-address[[:space:]]*=[[:space:]]*0\.0\.0\.0\$" "$_cnf"; then
        sed -i "s/^[[:space:]]*bind-address.*/bind-address\t\t= 0.0.0.0/" "$_cnf"
        echo "MySQL now listens on every address ($_cnf)"
    fi
    so_service_restart mysql
    so_wait_for "MySQL" 60 so_mysql_alive
    so_once root-password so_mysql_root_password
    so_mysql_ping
}

# The MySQL configuration file with the server's bind-address line: lucid's /etc/mysql/my.cnf, or
# a file under /etc/mysql/*.d/ (Debian's MariaDB: mariadb.conf.d/50-server.cnf).
so_mysql_bind_file() {
    for _f in /etc/mysql/my.cnf /etc/mysql/*.d/*.cnf; do
        if [ -f "$_f" ] && grep -q '^[[:space:]]*bind-address' "$_f"; then
            echo "$_f"
            return 0
        fi
    done
    return 1
}

# The server answers (mysqladmin ping exits 0 even when the login is refused).
so_mysql_alive() {
    mysqladmin --no-defaults ping >/dev/null 2>&1
}

so_mysql_ping() {
    so_mysql -e 'SELECT 1' >/dev/null
}

# Give every root account the answered password, logged in as root with it (set already: it is
# set again, harmless), without a password (a fresh lucid install preseeded with an empty one;
# Debian's MariaDB lets the OS root in through its socket) or as Debian's maintenance user
# (/etc/mysql/debian.cnf). `SET PASSWORD ... PASSWORD()` works on MySQL 5.1 and MariaDB alike.
so_mysql_root_password() {
    if so_mysql -e 'SELECT 1' >/dev/null 2>&1; then
        _how=answered
    elif mysql --no-defaults -u root -e 'SELECT 1' >/dev/null 2>&1; then
        _how=no-password
    elif [ -r /etc/mysql/debian.cnf ] &&
        mysql --defaults-file=/etc/mysql/debian.cnf -e 'SELECT 1' >/dev/null 2>&1; then
        _how=debian.cnf
    else
        so_fail "cannot log in to MySQL as root: not with the answered mysql_root_password, not \
without a password, not with /etc/mysql/debian.cnf"
        return 1
    fi
    _p=$(so_sql_str "$mysql_root_password")
    _hosts=$(so_mysql_as "$_how" -N -B -e "SELECT Host FROM mysql.user WHERE User = 'root'")
    for _h in $_hosts; do
        printf "SET PASSWORD FOR 'root'@'%s' = PASSWORD('%s');\n" "$(so_sql_str "$_h")" "$_p"
    done | so_mysql_as "$_how"
    so_mysql_as "$_how" -e 'FLUSH PRIVILEGES'
    echo "MySQL root password set on $(echo "$_hosts" | wc -w) accounts (logged in: $_how)"
}

# mysql logged in the way so_mysql_root_password found: answered | no-password | debian.cnf.
so_mysql_as() {
    _as=$1
    shift
    case $_as in
    answered) so_mysql "$@" ;;
    no-password) mysql --no-defaults -u root "$@" ;;
    *) mysql --defaults-file=/etc/mysql/debian.cnf "$@" ;;
    esac
}

# The nova database and the nova user (from anywhere and from localhost). lucid's MySQL comes
# with anonymous accounts (''@localhost, ''@<hostname>); one of them matches nova's TCP login
# from this host before 'nova'@'%' does and refuses it: they go.
so_step_nova_db() {
    _p=$(so_sql_str "$nova_db_password")
    so_mysql <<SQL
DELETE FROM mysql.user WHERE User = '';
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS nova;
GRANT ALL PRIVILEGES ON nova.* TO 'nova'@'%' IDENTIFIED BY '$_p';
GRANT ALL PRIVILEGES ON nova.* TO 'nova'@'localhost' IDENTIFIED BY '$_p';
FLUSH PRIVILEGES;
SQL
    echo "database nova and user nova ready"
}

# RabbitMQ user nova with the answered password. rabbitmqctl 1.7 takes passwords only on its
# command line, so the user comes from rabbitmq.config's default_user/default_pass, which the
# broker applies when it creates a fresh database [INFERRED for lucid's 1.7.2]; list_users
# checks that it worked.
so_step_rabbitmq() {
    _pw=$(printf '%s' "$rabbit_password" | sed 's/[\\"]/\\&/g')
    _grp=""
    grep -q '^rabbitmq:' /etc/group && _grp=rabbitmq
    printf '[{rabbit, [{default_user, <<"nova">>}, {default_pass, <<"%s">>}]}].\n' "$_pw" |
        so_install_file /etc/rabbitmq/rabbitmq.config 0640 "$_grp"
    so_once fresh-db so_rabbit_fresh_db
    so_service_enable rabbitmq-server
    so_wait_for "RabbitMQ" 60 so_rabbit_has_nova
    echo "RabbitMQ user nova ready"
}

so_rabbit_fresh_db() {
    so_service_stop rabbitmq-server
    rm -rf /var/lib/rabbitmq/mnesia
    so_service_start rabbitmq-server
}

so_rabbit_has_nova() {
    rabbitmqctl list_users 2>/dev/null | grep -q '^nova\b'
}

# Glance with the Cactus single-file glance.conf (file store, sqlite registry).
so_step_glance() {
    _grp=""
    grep -q '^glance:' /etc/group && _grp=glance
    so_render "$SO_ROLEDIR/glance.conf" | so_install_file /etc/glance/glance.conf 0640 "$_grp"
    mkdir -p /var/lib/glance/images
    # glance-api runs as glance on lucid and writes images here (issue 22 finding 13).
    if grep -q '^glance:' /etc/passwd; then chown glance:glance /var/lib/glance/images; fi
    so_services_up glance-registry glance-api
}

so_step_db_sync() {
    so_nova_manage db sync
}

# The admin user (its EC2 secret key set to admin_password through SQL on stdin, since
# nova-manage only takes it on the command line), the project, the root CA and the credentials
# zip. `project zipfile` prints its error and exits 0 when there is no root CA (nova-api makes
# one on its first start, which comes later): docs/nova-2011.2-facts.md §1.4. So the CA is made
# here, as StackOps did, and the zip itself is checked.
so_step_admin() {
    so_once user so_nova_manage user admin "$admin_user"
    so_once secret so_admin_secret
    so_once project so_nova_manage project create "$project" "$admin_user"
    so_once root-ca so_root_ca
    mkdir -p /root/creds
    chmod 0700 /root/creds
    so_nova_manage project zipfile "$project" "$admin_user" /root/creds/nova.zip
    if [ ! -s /root/creds/nova.zip ] || [ "$(head -c 2 /root/creds/nova.zip)" != PK ]; then
        so_fail "nova-manage project zipfile wrote no /root/creds/nova.zip (see its output above)"
        return 1
    fi
    chmod 0600 /root/creds/nova.zip
    # Nova writes the secret key raw into novarc's `export EC2_SECRET_KEY="..."`
    # (nova/auth/novarc.template:3); the answer may hold " $ ` \ (issue 22 finding 12)
    python "$SO_ROLEDIR/novarc.py" /root/creds/nova.zip ||
        { so_fail "could not make novarc in /root/creds/nova.zip safe to source"; return 1; }
    echo "credentials in /root/creds/nova.zip"
}

# Nova's root CA in --ca_path ($state_path/CA), made by the package's nova/CA/genrootca.sh run in
# that folder (it works on the current directory and finds its template beside itself).
SO_CA_DIR=/var/lib/nova/CA
so_root_ca() {
    if [ -f "$SO_CA_DIR/cacert.pem" ]; then
        echo "root CA exists: $SO_CA_DIR/cacert.pem"
        return 0
    fi
    _gen=$(find /usr/lib /usr/share -path '*/nova/CA/genrootca.sh' 2>/dev/null | head -n 1)
    if [ -z "$_gen" ]; then
        so_fail "nova/CA/genrootca.sh not found (is python-nova installed?)"
        return 1
    fi
    mkdir -p "$SO_CA_DIR"
    (cd "$SO_CA_DIR" && sh "$_gen")
    [ -f "$SO_CA_DIR/cacert.pem" ] || { so_fail "$_gen made no $SO_CA_DIR/cacert.pem"; return 1; }
    echo "root CA made in $SO_CA_DIR"
}

# Cactus nova/db/sqlalchemy/models.py: users(id, name, access_key, secret_key, is_admin)
# [INFERRED column names].
so_admin_secret() {
    _u=$(so_sql_str "$admin_user")
    _s=$(so_sql_str "$admin_password")
    so_mysql nova <<SQL
UPDATE users SET secret_key = '$_s' WHERE id = '$_u';
SQL
}

# Cactus argument order: network create <fixed_range> [num_networks] [network_size]. Not safe to
# re-run: 2011.2 exits 0 and adds a second network (docs/nova-2011.2-facts.md §1.3), so a power
# cut between it and the step's done marker would duplicate it: look in `network list` first
# (its rows start with the CIDR, bin/nova-manage:548-558).
so_step_network_create() {
    if so_nova_manage network list | grep -q "^${fixed_range}[[:space:]]"; then
        echo "network $fixed_range exists"
        return 0
    fi
    so_nova_manage network create "$fixed_range" 1 "$network_size"
}

# nova.conf's --flat_network_dns, which `network create` stores with the network
# (nova/network/manager.py:67 default 8.8.4.4, stored at 309): the network's gateway, where
# nova-network's dnsmasq listens and answers DNS (linux_net.py:684, it forwards to the network
# node's resolvers), so instances resolve names in an offline datacenter too.
SO_COMPUTED="$SO_COMPUTED flat_network_dns"
so_value_flat_network_dns() {
    [ -n "${fixed_range-}" ] || return 0
    so_ip_add "${fixed_range%/*}" 1
}

# Multi-node metadata (issue 22 finding 7): nova-network on the network node DNATs the instances'
# 169.254.169.254:80 to ec2_dmz_host:ec2_port, this node (nova/network/linux_net.py:351-358), and
# lets them through unSNATed (`-s fixed_range -d dmz_cidr -j ACCEPT`, 370-372), because nova-api
# finds the instance by the client address (nova/api/ec2/metadatarequesthandler.py:71). This
# node's answers to the fixed range must go back through the network node: a route, made now and
# by an ifupdown hook whenever public_interface comes up. Where nova-network runs here (single-
# and dual-node) the range is on this node's bridge. SO_IFUP_D: ifupdown's if-up.d folder.
SO_IFUP_D=${SO_IFUP_D:-/etc/network/if-up.d}
so_step_metadata_route() {
    case " $SO_ROLES " in *" network "*)
        echo "nova-network runs on this node: the fixed range is local, no route needed"
        return 0
        ;;
    esac
    if [ -z "${network_address-}" ]; then
        so_warn "no network_address answered: instances will get no metadata (keys, user-data) \
until $fixed_range is routed through the network node"
        return 0
    fi
    # lucid's ifupdown (priority important) always has the folder; a node without ifupdown
    # gets the hook too (harmless) and the route now
    mkdir -p "$SO_IFUP_D"
    # shellcheck disable=SC2016 # $IFACE is ifupdown's, for the hook
    {
        printf '#!/bin/sh\n# StackOps (stackops-agent): the instances'"'"' fixed range through the '
        printf 'network node,\n# for the metadata answers nova-api sends them. Run by ifupdown.\n'
        printf '[ "$IFACE" = %s ] || exit 0\n' "${public_interface:-eth0}"
        printf 'ip route replace %s via %s\n' "$fixed_range" "$network_address"
    } | so_write_if_changed "$SO_IFUP_D/stackops-metadata-route" 0755
    ip route replace "$fixed_range" via "$network_address"
    echo "route: $fixed_range via $network_address (the network node), also at each ifup"
}

# nova-api reads its WSGI pipelines from api-paste.ini, looked for in /etc/nova/ among others
# (--api_paste_config, nova/service.py:59; nova/wsgi.py:570-577). Nova 2011.2's setup.py installs
# no etc/ (setup.py:113: tools/ only) and what lucid's PPA nova-api package ships is not known
# here, so the role carries 2011.2's etc/nova/api-paste.ini and installs it when it is missing
# (issue 22 finding 12).
so_step_services() {
    if [ ! -f /etc/nova/api-paste.ini ]; then
        so_install_file /etc/nova/api-paste.ini 0644 <"$SO_ROLEDIR/api-paste.ini"
        echo "installed /etc/nova/api-paste.ini (Nova 2011.2's)"
    fi
    so_services_up nova-api nova-scheduler nova-objectstore
}

# The controller's final step (role.yaml final_steps, after every role of the node): /usr/sbin/stackops-check (agent/stackops-check)
# proves the cloud works: every registered service alive, this node's own Nova services among
# them, the EC2 API, Glance, the network. Each check's line goes to the console and, as a
# STACKOPS-CHECK line, to the Smart Installer. STACKOPS_CHECK_WAIT: the seconds the services may
# take to report alive (default 90).
so_step_check() {
    _host=$(uname -n)
    # the node's services that register in Nova's services table (Nova 2011.2: bin/nova-compute,
    # -network, -scheduler, -volume call service.serve(); nova-api and -objectstore do not)
    set --
    for _r in $SO_ROLES; do
        for _svc in $(so_role_field "$_r" 5); do
            case $_svc in nova-scheduler | nova-network | nova-volume | nova-compute)
                set -- "$@" --expect "$_host:$_svc"
                ;;
            esac
        done
    done
    _rc=0
    stackops-check --wait "${STACKOPS_CHECK_WAIT:-90}" "$@" >"$SO_STATE/check.out" 2>&1 || _rc=$?
    while IFS= read -r _line; do
        printf '%s\n' "$_line"
        so_console "STACKOPS-CHECK $_line"
        # the Smart Installer takes printable progress lines of at most 400 characters
        so_report "$(printf 'STACKOPS-CHECK %s' "$_line" | tr -cd '[:print:]' | cut -c1-400)"
    done <"$SO_STATE/check.out"
    rm -f "$SO_STATE/check.out"
    [ "$_rc" = 0 ] || { so_fail "stackops-check failed (exit $_rc): the cloud does not work yet"; return 1; }
}
