#!/usr/bin/env zsh
# Drives a real interactive zsh through a pseudo-terminal (zsh/zpty): loads
# the completion file with compinit from a temp fpath, types each line given
# on standard input followed by TAB presses, and prints what the command line
# holds after each TAB, one line each.  A stand-in `jitgate` function
# answers `list --pending`, `list --active` and `status` as jitgated would
# (and `--socket /x list --pending` and `--socket /both status` as other
# jitgateds).
# TAB is menu-complete, so a second TAB steps to the next candidate and every
# candidate can be read off the line.
#
# usage: zsh_complete.zsh COMPLETION_FILE < lines   ("TEXT<TAB><TAB>..." with a
#        literal <TAB> for each press)
emulate -L zsh
zmodload zsh/zpty || { print -u2 "zsh/zpty is missing"; exit 1 }
comp=${1:A}
tmp=$(mktemp -d /tmp/jitgate-zsh-XXXXXX)
trap 'zpty -d jz 2>/dev/null; [[ -n $JG_KEEP ]] || rm -rf $tmp' EXIT
mkdir $tmp/fpath && cp $comp $tmp/fpath/_jitgate
out=$tmp/lines

cat >$tmp/zshrc <<EOF
fpath=($tmp/fpath \$fpath)
autoload -Uz compinit && compinit -u -D
jitgate() {
  case "\$*" in
    *"--socket /x list --pending"*) print '{"requests":[{"request_id":99,"state":"pending"}]}' ;;
    *"list --pending"*) print '{"requests":[{"request_id":12,"state":"pending"},{"request_id":7}]}' ;;
    *"list --active"*) print '{"grants":[{"grant_id":13,"request_id":12}]}' ;;
    *"--socket /both status"*) print '{"ports":[{"name":"dns","port":53,"proto":"both"}]}' ;;
    *status*) print '{"ports":[{"name":"db","port":5432,"proto":"tcp"}]}' ;;
  esac
}
bindkey '^I' menu-complete
jg-dump() { print -r -- "\$BUFFER" >>$out }
jg-done() { print -r -- "--done--" >>$out }
zle -N jg-dump; zle -N jg-done
bindkey '^T' jg-dump '^Y' jg-done
PS1='> '
EOF

zpty jz "zsh -f -i" || { print -u2 "cannot start zsh in a pty"; exit 1 }
zpty -w jz "source $tmp/zshrc"
# Typeahead sent before zle is reading is thrown away: wait for each step.
wait_lines() {  # wait_lines N: until the dump file holds N lines (10 s at most)
  local i
  for i in {1..100}; do
    [[ -f $out && $(wc -l <$out) -ge $1 ]] && return 0
    zpty -r -t jz junk 2>/dev/null
    sleep 0.1
  done
  print -u2 "zsh did not answer: ${(q+)junk}"
  return 1
}
zpty -w -n jz $'\x19'
wait_lines 1 || exit 1
n=1
press=$'\t\x14'  # TAB, then ^T: the line is dumped after each press
while IFS= read -r line; do
  zpty -w -n jz "${line//<TAB>/$press}"$'\x15'  # ^U clears the line
  marks=${line//<TAB>/$'\x01'}
  marks=${marks//[^$'\x01']/}
  (( n += ${#marks} ))
  wait_lines $n || exit 1
done
grep -v -- '--done--' $out
