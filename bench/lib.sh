# Shared by the bench scripts (sourced, not run): timing, medians, a free port, and a
# machine's own QEMU command line rerun bare, for the baselines measured in the same run.

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# The backing file of a machine's overlay: the box disk a bare QEMU starts from too.
backing_of() {
  qemu-img info --output=json -U "$1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)["backing-filename"]))'
}

# bare_argv MACHINE_DIR DIR PORT: fills the array `bare` from the array `argv` (a running
# machine's /proc/PID/cmdline), with the overlay, seed, pid file, serial log and QMP
# socket of MACHINE_DIR (absolute) moved under DIR and the SSH forward moved to PORT.
bare_argv() {
  local m=$1 dir=$2 port=$3 arg
  bare=()
  for arg in "${argv[@]:1}"; do
    arg=${arg//$m\/overlay.qcow2/$dir/overlay.qcow2}
    arg=${arg//$m\/seed/$dir/seed}
    arg=${arg//$m\/qemu.pid/$dir/qemu.pid}
    arg=${arg//$m\/serial.log/$dir/serial.log}
    arg=$(echo "$arg" | sed -E "s#unix:[^,]*qmp.sock#unix:$dir/qmp.sock#; s#hostfwd=tcp:127.0.0.1:[0-9]+-:22#hostfwd=tcp:127.0.0.1:$port-:22#")
    bare+=("$arg")
  done
}
