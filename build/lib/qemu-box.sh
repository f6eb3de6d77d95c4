# build/lib/qemu-box.sh — shell helpers shared by build/boot-test.sh and
# build/update-test.sh, which boot the SD-card image in QEMU and talk to the
# box. Sourced, not run. The caller defines fail MESSAGE (exits non-zero)
# and, before rpc is used, box=http://127.0.0.1:<port forwarded to :8079>.
# qemu_pid holds the running QEMU's PID ("" when none).

qemu_pid=
# stop_qemu: ends the running QEMU (TERM, then KILL after 5 s) and reaps it.
stop_qemu() {
	if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$qemu_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$qemu_pid" 2>/dev/null || true
	fi
	[[ -z $qemu_pid ]] || wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=
}

# free_port: a TCP port nothing listens on at 127.0.0.1.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	fail "no free port on 127.0.0.1"
}

# rpc ID MESSAGE_JSON: one pos_multi_session_sync JSON-RPC call (database
# shop, multi-session 1, user 2); prints the response body.
rpc() {
	curl -sS -m 10 -H 'Content-Type: application/json' --data-binary @- "$box/pos_multi_session_sync/update" <<JSON
{"jsonrpc":"2.0","method":"call","id":$1,"params":{"multi_session_id":1,"dbname":"shop","user_ID":2,"message":$2}}
JSON
}
# sync_all ID: POS 1's start-up sync_all.
sync_all() {
	rpc "$1" '{"action":"sync_all","session_id":1,"login_number":1,"immediate_rerendering":true,"data":{"run_ID":1,"pos_id":1,"nonce":"sync-'"$1"'"}}'
}
# update_order ID SEQ: creates order 00001-001-<SEQ> with one line, as the
# Odoo 12 client sends lines ([0, 0, {line}]).
update_order() {
	local uid
	uid=$(printf '00001-001-%04d' "$2")
	rpc "$1" '{"action":"update_order","session_id":1,"login_number":1,"data":{"uid":"'"$uid"'","sequence_number":'"$2"',"revision_ID":1,"run_ID":1,"pos_id":1,"nonce":"n'"$2"'","lines":[[0,0,{"product_id":1,"qty":'"$2"'}]],"name":"Order '"$uid"'"}}'
}
