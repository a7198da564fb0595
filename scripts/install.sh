#!/usr/bin/env bash
# Install the tscni executable as the CNI plugins `bridge` and `host-local`.
#
#   scripts/install.sh [DIR]              install into DIR (default /opt/cni/bin)
#   scripts/install.sh --uninstall [DIR]  undo it: remove what it installed, restore backups
#
# DIR/tscni is a copy of dist/bin/tscni (or $TSCNI_BIN); DIR/bridge and DIR/host-local are
# hard links to it (symlinks where a hard link cannot be made). A plugin already in DIR
# under one of those names that this script did not put there (the Go host-local, say) is
# moved to DIR/.tscni-backup/NAME, and --uninstall moves it back. DIR/.tscni-backup/installed
# lists what this script installed. Re-running install is idempotent: it replaces its own
# files (atomically, by rename, so a plugin that is running right now is not disturbed) and
# never backs up its own links.
set -euo pipefail

NAMES=(bridge host-local)
BACKUP_DIRNAME=.tscni-backup

usage() {
  echo "usage: $0 [--uninstall] [DIR]   (DIR defaults to /opt/cni/bin)" >&2
  exit 2
}

log() { echo "install.sh: $*" >&2; }

mode=install
dir=
for arg in "$@"; do
  case "$arg" in
    --uninstall) mode=uninstall ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) [[ -z "$dir" ]] || usage; dir=$arg ;;
  esac
done
dir=${dir:-/opt/cni/bin}
dir=${dir%/}
backup="$dir/$BACKUP_DIRNAME"
manifest="$backup/installed"

# Was NAME put in DIR by this script? tscni: if the manifest says so. A plugin name: if it is
# (a hard link to or a symlink to) our tscni — test -ef compares device and inode after
# following symlinks.
ours() {
  local name=$1 path="$dir/$1"
  [[ -e "$path" || -L "$path" ]] || return 1
  [[ -f "$manifest" ]] && grep -qxF tscni "$manifest" || return 1
  [[ "$name" == tscni ]] && return 0
  [[ -e "$dir/tscni" && "$path" -ef "$dir/tscni" ]]
}

# Move a plugin we did not install out of the way, keeping an older backup if there is one.
back_up() {
  local name=$1
  mkdir -p "$backup"
  if [[ -e "$backup/$name" || -L "$backup/$name" ]]; then
    local old
    old="$backup/$name.$(date +%Y%m%d%H%M%S)"
    log "a backup of $name already exists; keeping it as $old"
    mv -f "$backup/$name" "$old"
  fi
  mv -f "$dir/$name" "$backup/$name"
  log "moved $dir/$name to $backup/$name"
}

# Replace DIR/NAME by a link to DIR/tscni in one rename.
link_to_tscni() {
  local name=$1 tmp="$dir/.$1.tscni-tmp.$$"
  rm -f "$tmp"
  if ! ln "$dir/tscni" "$tmp" 2>/dev/null; then
    ln -s tscni "$tmp" # cross-device (a bind mount) or a filesystem without hard links
  fi
  mv -fT "$tmp" "$dir/$name"
}

install() {
  local src=${TSCNI_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dist/bin/tscni}
  [[ -f "$src" && -x "$src" ]] || { log "$src not found or not executable: run npm run build"; exit 1; }
  mkdir -p "$dir"

  # Decide what is ours before replacing tscni: our old links share the old tscni's inode.
  local name
  for name in tscni "${NAMES[@]}"; do
    if [[ -e "$dir/$name" || -L "$dir/$name" ]] && ! ours "$name"; then
      back_up "$name"
    fi
  done

  local tmp="$dir/.tscni.tscni-tmp.$$"
  cp -f "$src" "$tmp"
  chmod 0755 "$tmp"
  mv -fT "$tmp" "$dir/tscni"
  for name in "${NAMES[@]}"; do link_to_tscni "$name"; done

  mkdir -p "$backup"
  printf '%s\n' tscni "${NAMES[@]}" >"$manifest.tmp"
  mv -f "$manifest.tmp" "$manifest"
  log "installed $dir/tscni as ${NAMES[*]}"
}

uninstall() {
  if [[ ! -f "$manifest" ]]; then
    log "nothing installed by tscni in $dir"
    exit 0
  fi
  local name remove=()
  # Decide first (ours() needs tscni in place), then remove.
  for name in "${NAMES[@]}" tscni; do
    if ours "$name"; then
      remove+=("$name")
    elif [[ -e "$dir/$name" || -L "$dir/$name" ]]; then
      log "$dir/$name was replaced since tscni installed it; leaving it alone"
    fi
  done
  for name in "${remove[@]}"; do rm -f "$dir/$name"; done
  rm -f "$manifest"

  if [[ -d "$backup" ]]; then
    for name in tscni "${NAMES[@]}"; do
      [[ -e "$backup/$name" || -L "$backup/$name" ]] || continue
      if [[ -e "$dir/$name" || -L "$dir/$name" ]]; then
        log "not restoring $name: $dir/$name exists; the backup stays in $backup"
      else
        mv "$backup/$name" "$dir/$name"
        log "restored $dir/$name"
      fi
    done
    rmdir "$backup" 2>/dev/null || log "$backup still holds older backups; left in place"
  fi
  log "uninstalled tscni from $dir"
}

"$mode"
