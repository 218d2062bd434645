# shellcheck shell=sh
# StackOps node agent: controller steps (reference/lucid-and-nova.md §4.3, §4.5, §4.6): MySQL
# bound to the controller address, the nova database, RabbitMQ, Glance, the schema, the admin
# user and project, the fixed network, and nova-api/-scheduler/-objectstore.
# shellcheck disable=SC2154 # answers are set by so_answers_load

# bind-address in /etc/mysql/my.cnf (lucid ships 127.0.0.1), then restart MySQL.
so_step_mysql() {
    _cnf=/etc/mysql/my.cnf
    grep -q '^[[:space:]]*bind-address' "$_cnf" ||
        { so_fail "$_cnf has no bind-address line (is mysql-server installed?)"; return 1; }
    if ! grep -q "^bind-address[[:space:]]*=[[:space:]]*$controller_address\$" "$_cnf"; then
        sed -i "s/^[[:space:]]*bind-address.*/bind-address\t\t= $controller_address/" "$_cnf"
        echo "MySQL now listens on $controller_address"
    fi
    so_service_restart mysql
    so_wait_for "MySQL" 60 so_mysql_ping
}

so_mysql_ping() {
    so_mysql -e 'SELECT 1' >/dev/null
}

# The nova database and the nova user (from anywhere and from localhost).
so_step_nova_db() {
    _p=$(so_sql_str "$nova_db_password")
    so_mysql <<SQL
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
    so_services_up glance-registry glance-api
}

so_step_db_sync() {
    so_nova_manage db sync
}

# The admin user (its EC2 secret key set to admin_password through SQL on stdin, since
# nova-manage only takes it on the command line), the project and the credentials zip.
so_step_admin() {
    so_once user so_nova_manage user admin "$admin_user"
    so_once secret so_admin_secret
    so_once project so_nova_manage project create "$project" "$admin_user"
    mkdir -p /root/creds
    chmod 0700 /root/creds
    so_once zipfile so_nova_manage project zipfile "$project" "$admin_user" /root/creds/nova.zip
    [ ! -f /root/creds/nova.zip ] || chmod 0600 /root/creds/nova.zip
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

# Cactus argument order: network create <fixed_range> [num_networks] [network_size].
so_step_network_create() {
    so_nova_manage network create "$fixed_range" 1 "$network_size"
}

so_step_services() {
    so_services_up nova-api nova-scheduler nova-objectstore
}
