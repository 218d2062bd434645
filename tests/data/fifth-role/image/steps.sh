# shellcheck shell=sh
# The image role's one step: the image store directory, and a note of it for Glance.
# shellcheck disable=SC2154 # answers are set by so_answers_load

so_step_image_store() {
    _dir="/var/lib/glance/$image_store"
    mkdir -p "$_dir"
    printf 'filesystem_store_datadir = %s\n' "$_dir" |
        so_install_file /etc/glance/image-store.conf 0644
    echo "image store at $_dir"
}
