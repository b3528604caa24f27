# bash completion for jitgate(1): sub-commands, their options, and ids from
# jitgated (pending requests for approve and deny, active grants for revoke and extend),
# read from `jitgate list --json`.  Installed to
# /usr/share/bash-completion/completions/jitgate.

# _jitgate_nodes: the fleet's node names, from `jitgate --json nodes` (only
# names of the characters a node name may hold: they come from etcd).
_jitgate_nodes() {
    jitgate "${_jitgate_sock[@]}" --json nodes 2>/dev/null |
        grep -o '"node":"[A-Za-z0-9._-]*"' | cut -d'"' -f4 | sort -u
}

# _jitgate_json_ids FIELD ARGS...: the values of "FIELD":N in `jitgate --json ARGS`.
_jitgate_json_ids() {
    local field=$1
    shift
    jitgate "${_jitgate_sock[@]}" --json "$@" 2>/dev/null |
        grep -o "\"$field\":[0-9]*" | cut -d: -f2 | sort -un
}

_jitgate() {
    local cur prev words cword
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    cword=$COMP_CWORD
    words=("${COMP_WORDS[@]}")

    # tests/dist/check_docs.py holds these lists against jitgate's own
    # definition (userspace/cli/app.cpp): change them together.
    local commands="request run break-glass approve deny revoke extend list nodes status metrics audit policy notify login logout"
    local global="--socket --web --json --help"
    # The sub-command (and the sub-sub-command), the --socket given, and
    # whether `--` came before the word being completed.
    local cmd="" sub="" dashdash=0 i
    _jitgate_sock=()
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --socket) _jitgate_sock=(--socket "${words[i+1]}"); ((i++)) ;;
            --socket=*) _jitgate_sock=("${words[i]}") ;;
            --web) _jitgate_sock=(--web "${words[i+1]}"); ((i++)) ;;
            --web=*) _jitgate_sock=("${words[i]}") ;;
            --) [[ -n $cmd ]] && dashdash=$i ;;
            -*) ;;
            *)
                if [[ -z $cmd ]]; then
                    cmd=${words[i]}
                elif [[ -z $sub && ($cmd == audit || $cmd == policy) ]]; then
                    sub=${words[i]}
                fi
                ;;
        esac
        ((dashdash)) && break
    done

    # jitgate run ... -- COMMAND ARGS: the command, then its own arguments (files).
    if ((dashdash)); then
        if ((cword == dashdash + 1)); then
            COMPREPLY=($(compgen -c -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi

    case $prev in
        --socket | --config | --state-dir) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        --retry-max) COMPREPLY=($(compgen -W "10s 1m 5m" -- "$cur")); return 0 ;;
        --for) COMPREPLY=($(compgen -W "5m 15m 30m 1h 1h30m 2h" -- "$cur")); return 0 ;;
        --type)
            COMPREPLY=($(compgen -W "deny would_deny allow request approve reject grant revoke expire
                break_glass events_lost tamper_detected policy_reload daemon_start daemon_stop bind_denied approval_lapsed expiry_warning extend notify_failed" -- "$cur"))
            return 0 ;;
        --since) COMPREPLY=($(compgen -W "10m 1h 24h" -- "$cur")); return 0 ;;
        --timeout) COMPREPLY=($(compgen -W "10s 30s 1m 5m" -- "$cur")); return 0 ;;
        --on) COMPREPLY=($(compgen -W "$(_jitgate_nodes)" -- "$cur")); return 0 ;;
        --reason | --ticket | --from | --port | --user | --limit | --after | --web) return 0 ;;
    esac

    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands $global --version" -- "$cur"))
        return 0
    fi

    local opts=""
    case $cmd in
        request) opts="--for --reason --ticket --from --from-me --on --wait --timeout" ;;
        run) opts="--for --reason --ticket --from --" ;;
        break-glass) opts="--for --reason --on" ;;
        approve) opts="--for --wait --timeout" ;;
        deny) opts="--reason" ;;
        revoke) opts="--wait --timeout" ;;
        extend) opts="--for --reason --wait" ;;
        nodes | status | metrics) opts="" ;;
        login) opts="--forget" ;;
        logout) opts="" ;;
        notify) opts="--config --state-dir --retry-max --status" ;;
        list) opts="--pending --active --all --limit --after" ;;
        audit)
            if [[ $sub == verify && $cur != -* ]]; then
                COMPREPLY=($(compgen -f -- "$cur"))
                return 0
            fi
            if [[ $sub == verify ]]; then opts="--fleet"; else opts="--follow --since --type --port --user --limit verify"; fi ;;
        policy)
            if [[ $cur == -* ]]; then
                :
            elif [[ $sub == check || $sub == push ]]; then
                COMPREPLY=($(compgen -f -- "$cur"))
                return 0
            elif [[ -z $sub ]]; then
                COMPREPLY=($(compgen -W "check push show" -- "$cur"))
                return 0
            else
                return 0
            fi ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts $global" -- "$cur"))
        return 0
    fi
    # The one positional argument: an id, or a protected port.
    local given=0
    for ((i = 2; i < cword; i++)); do
        [[ ${words[i]} != -* && ${words[i-1]} != --* && ${words[i]} != "$cmd" ]] && given=1
    done
    case $cmd in
        approve | deny)
            ((given)) || COMPREPLY=($(compgen -W "$(_jitgate_json_ids request_id list --pending)" -- "$cur")) ;;
        revoke | extend)
            ((given)) || COMPREPLY=($(compgen -W "$(_jitgate_json_ids grant_id list --active)" -- "$cur")) ;;
        request | run | break-glass)
            if ((!given)); then
                # A port of proto "both" is asked for as PORT/tcp or PORT/udp.
                local ports
                ports=$(jitgate "${_jitgate_sock[@]}" --json status 2>/dev/null |
                    grep -o '"port":[0-9]*,"proto":"[a-z]*"' |
                    sed 's/"port":\([0-9]*\),"proto":"\([a-z]*\)"/\1\/\2/; s/^\([0-9]*\)\/both$/\1\/tcp \1\/udp/' |
                    tr ' ' '\n' | sort -u)
                COMPREPLY=($(compgen -W "$ports" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$opts" -- "$cur"))
            fi ;;
        *) COMPREPLY=($(compgen -W "$opts" -- "$cur")) ;;
    esac
    return 0
}
complete -F _jitgate jitgate
