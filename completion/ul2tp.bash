# bash completion for ul2tp (and ul2tp-ip l2tp ...)                -*- shell-script -*-
#
# Install: source this file from ~/.bashrc, or copy it to
# /usr/share/bash-completion/completions/ul2tp (npm: it ships as
# node_modules/ul2tp/completion/ul2tp.bash; `npm install -g` users can add
#   source "$(npm root -g)/ul2tp/completion/ul2tp.bash"
# to ~/.bashrc).
#
# Completes commands, ip l2tp keywords and their fixed values, and the ids
# of the tunnels and sessions that exist (asked from the namespace's daemon
# with `ul2tp -j show ...`, only when its control socket exists: completing
# never starts a daemon).

# The control socket of this namespace's daemon, if one listens.
_ul2tp_socket() {
    local ino
    ino=$(stat -L -c %i /proc/self/ns/net 2>/dev/null) || return 1
    local sock="${UL2TP_RUNDIR:-/run/ul2tp}"
    sock="${sock%/}/$ino/ctl.sock"
    [[ -S $sock ]]
}

# Existing ids: _ul2tp_ids CMD tunnel|session [TUNNEL_ID]
_ul2tp_ids() {
    local cmd=$1 what=$2 tid=${3-}
    _ul2tp_socket || return 0
    "$cmd" -j show "$what" 2>/dev/null | sed 's/},{/}\n{/g' | while IFS= read -r obj; do
        local t s
        t=$(sed -n 's/.*"tunnel_id":\([0-9]*\).*/\1/p' <<<"$obj")
        if [[ $what == tunnel ]]; then
            [[ -n $t ]] && echo "$t"
        else
            s=$(sed -n 's/.*"session_id":\([0-9]*\).*/\1/p' <<<"$obj")
            [[ -n $s && ( -z $tid || $tid == "$t" ) ]] && echo "$s"
        fi
    done
}

_ul2tp() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local cmd=${COMP_WORDS[0]}
    case $prev in
        -b | -ba | -bat | -batc | -batch) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac

    # Skip global options; find the command word and the object.
    local i=1 verb='' object='' tid=''
    while [[ $i -lt $COMP_CWORD && ${COMP_WORDS[i]} == -* ]]; do
        [[ ${COMP_WORDS[i]} == -b* ]] && { ((i += 2)); continue; }
        ((i++))
    done
    local first=$i
    if [[ $i -lt $COMP_CWORD ]]; then
        verb=${COMP_WORDS[i]}
        ((i++))
    fi
    if [[ $i -lt $COMP_CWORD ]]; then object=${COMP_WORDS[i]}; fi
    local j
    for ((j = first; j < COMP_CWORD - 1; j++)); do
        case ${COMP_WORDS[j]} in
            tunnel_id | tid) tid=${COMP_WORDS[j + 1]} ;;
        esac
    done

    if [[ -z $verb ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '-j -json -p -pretty -s -stats -o -oneline -batch -force -h --help -V --version' -- "$cur"))
        else
            COMPREPLY=($(compgen -W 'add del show help stats capture impair daemon save' -- "$cur"))
        fi
        return
    fi

    case $verb in
        a | ad | add) verb=add ;;
        d | de | del | dele | delet | delete) verb=del ;;
        s | sh | sho | show | l | ls | lst | li | lis | list) verb=show ;;
    esac

    # Values of keywords.
    case $prev in
        encap) COMPREPLY=($(compgen -W 'udp ip' -- "$cur")); return ;;
        udp_csum | udp6_csum_tx | udp6_csum_rx) COMPREPLY=($(compgen -W 'on off' -- "$cur")); return ;;
        l2spec_type) COMPREPLY=($(compgen -W 'none default' -- "$cur")); return ;;
        seq) COMPREPLY=($(compgen -W 'none send recv both' -- "$cur")); return ;;
        tunnel_id | tid)
            # A new tunnel needs a new id; everywhere else an existing one.
            [[ $verb == add && $object == tunnel ]] && return
            COMPREPLY=($(compgen -W "$(_ul2tp_ids "$cmd" tunnel)" -- "$cur"))
            return
            ;;
        session_id | sid)
            [[ $verb == add ]] && return
            COMPREPLY=($(compgen -W "$(_ul2tp_ids "$cmd" session "$tid")" -- "$cur"))
            return
            ;;
        peer_tunnel_id | ptid | peer_session_id | psid | local | remote | udp_sport | udp_dport | name | cookie | peer_cookie | \
            -i | -c | count | interval | loss | duplicate | reorder | distance | delay | jitter | rate | seed | --metrics | --config)
            return
            ;;
        -w) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --backend) COMPREPLY=($(compgen -W 'koffi native-free' -- "$cur")); return ;;
    esac

    local words=''
    case $verb in
        add | del | show)
            if [[ -z $object ]]; then
                words='tunnel session'
            else
                case $verb/$object in
                    add/tunnel) words='tunnel_id peer_tunnel_id encap local remote udp_sport udp_dport udp_csum udp6_csum_tx udp6_csum_rx' ;;
                    add/session) words='tunnel_id session_id peer_session_id name cookie peer_cookie l2spec_type seq' ;;
                    del/tunnel) words='tunnel_id' ;;
                    del/session | show/session) words='tunnel_id session_id' ;;
                    show/tunnel) words='tunnel_id' ;;
                esac
            fi
            ;;
        stats) words='tunnel_id session_id -i -c' ;;
        capture) words='tunnel_id session_id -w --inner -c' ;;
        impair) words='tunnel_id session_id loss duplicate reorder distance delay jitter rate seed off' ;;
        daemon)
            if [[ $cur == -* ]]; then
                words='--foreground --background --backend --config --metrics --metrics-any-address --no-offload --help'
            else
                words='status reload'
            fi
            ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _ul2tp ul2tp
