# The browser test inside the guest (run by vmtest.HostRootInit with bash,
# in the host's root with a writable overlay). /vkeyshare holds vkey, the
# page, its server and this script; reports and logs go to /vkeyshare/out.
# CASES (in /vkeyshare/cases) lists the cases to run, one per line.
S=/vkeyshare
OUT=$S/out
PIN=1234
CASE_SECONDS=$(cat "$S/case-seconds")
mkdir -p "$OUT"
export XDG_RUNTIME_DIR=/run/vkey
mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
t0=$(date +%s%N)
say() { echo "browsers: [$(( ($(date +%s%N) - t0) / 1000000 )) ms] $*"; }

KEY=
start_key() {
	rm -f /tmp/ready
	"$S/vkey" run --verbose --transport uhid --presence auto --ephemeral --name vm --ready-file /tmp/ready >>"$OUT/vkey.log" 2>&1 &
	KEY=$!
	for _ in $(seq 200); do [ -s /tmp/ready ] && break; sleep 0.05; done
	[ -s /tmp/ready ] || { say "vkey did not start"; return 1; }
	if [ "$1" = pin ]; then
		VKEY_NEW_PIN=$PIN "$S/vkey" pin set >>"$OUT/vkey.log" 2>&1 || { say "vkey pin set failed"; return 1; }
	fi
	say "key ready on $(cat /tmp/ready) ${1:+with a PIN}"
}
stop_key() {
	[ -n "$KEY" ] || return 0
	kill "$KEY"; wait "$KEY" 2>/dev/null; KEY=
	for _ in $(seq 100); do [ -e /dev/hidraw0 ] || break; sleep 0.05; done
}

python3 "$S/server.py" 8080 "$OUT/reports.jsonl" >"$OUT/server.log" 2>&1 &
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/8080) 2>/dev/null && break; sleep 0.1; done

# wait_done CASE PID SECONDS: until the page reported "done", the browser
# exited or the time ran out; then stop the browser's whole session.
wait_done() {
	local name=$1 pid=$2 end=$(( $(date +%s) + $3 ))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ -e "$OUT/reports.jsonl.done-$name" ] && break
		kill -0 "$pid" 2>/dev/null || { say "$name: the browser exited"; break; }
		[ -n "$ON_TICK" ] && $ON_TICK
		sleep 0.5
	done
	[ -e "$OUT/reports.jsonl.done-$name" ] || say "$name: no result after $3 s"
	kill -TERM -- "-$pid" 2>/dev/null; sleep 0.5; kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	say "$name: finished"
}

url() { echo "http://localhost:8080/?case=$1&$2"; }

# What a browser does at start besides showing the page costs a minute
# under TCG: turn off what can be. Fewer processes, too: on a busy host a
# child that has not connected within 15 s is killed (the network service
# was, and the page never loaded).
chromium_flags=(--no-sandbox --no-first-run --no-default-browser-check --disable-gpu
	--disable-dev-shm-usage --disable-extensions --disable-component-update
	--disable-background-networking --disable-sync --disable-default-apps --no-pings
	--disable-breakpad --mute-audio --disable-domain-reliability --no-service-autorun
	--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,InterestFeedContentSuggestions,OnDeviceModelService
	--enable-features=NetworkServiceInProcess2 --in-process-gpu --no-zygote
	--disable-site-isolation-trials --renderer-process-limit=1
	--password-store=basic --use-mock-keychain --enable-logging=stderr)

firefox_profile() {
	mkdir -p "$1"
	cat > "$1/user.js" <<'PREFS'
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("app.update.enabled", false);
user_pref("security.webauth.webauthn_enable_usbtoken", true);
user_pref("browser.newtabpage.enabled", false);
user_pref("browser.startup.page", 0);
user_pref("extensions.update.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("browser.discovery.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("fission.autostart", false);
user_pref("dom.ipc.processCount", 1);
user_pref("dom.ipc.processPrelaunch.enabled", false);
user_pref("browser.sessionstore.resume_from_crash", false);
user_pref("extensions.pocket.enabled", false);
user_pref("browser.region.update.enabled", false);
user_pref("media.gmp-manager.updateEnabled", false);
user_pref("extensions.systemAddon.update.enabled", false);
PREFS
}

# Firefox's PIN prompt, answered without UI: an autoconfig script (run with
# chrome privileges at start-up) makes WebAuthnPromptHelper's password
# prompt return the PIN, which it then hands to pinCallback(tid, PIN).
firefox_pin_autoconfig() {
	local dir=/usr/lib/firefox-esr
	cat > "$dir/defaults/pref/vkey-autoconfig.js" <<'JS'
pref("general.config.filename", "vkey.cfg");
pref("general.config.obscure_value", 0);
pref("general.config.sandbox_enabled", false);
JS
	cat > "$dir/vkey.cfg" <<JS
// vkey: answer WebAuthn PIN prompts with the test's PIN
try {
  const { WebAuthnPromptHelper } = ChromeUtils.importESModule("moz-src:///toolkit/modules/WebAuthnPromptHelper.sys.mjs");
  WebAuthnPromptHelper.prompt_for_password = function (bc, origin, wasInvalid, retries, aPassword) {
    aPassword.value = "$PIN";
    return !wasInvalid;
  };
  Services.prefs.setBoolPref("vkey.autoconfig.loaded", true);
} catch (e) {
  Components.utils.reportError("vkey autoconfig: " + e);
}
JS
}

case_chromium_headless() {
	start_key || return
	setsid chromium --headless=new "${chromium_flags[@]}" --user-data-dir=/tmp/chromium-headless \
		--vmodule='*webauthn*=1,*fido*=1,*device_event_log*=1' \
		"$(url chromium-headless 'rk=0')" >"$OUT/chromium-headless.log" 2>&1 &
	wait_done chromium-headless $! $CASE_SECONDS
	stop_key
}

case_firefox_headless() {
	start_key || return
	firefox_profile /tmp/ff-headless
	setsid firefox-esr --headless --no-remote --profile /tmp/ff-headless \
		"$(url firefox-headless 'prf=1&prfmc=enabled')" >"$OUT/firefox-headless.log" 2>&1 &
	wait_done firefox-headless $! $CASE_SECONDS
	stop_key
}

XPID=
start_xvfb() {
	[ -n "$XPID" ] && return 0
	Xvfb :99 -screen 0 1280x1024x24 -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
	XPID=$!
	for _ in $(seq 100); do [ -e /tmp/.X11-unix/X99 ] && break; sleep 0.1; done
}

# Chromium asks for the PIN in its own dialog; its verbose log names the
# step (kClientPinEntry) when the dialog appears, and xdotool types the PIN.
TYPED=0
type_pin_when_asked() {
	local n
	n=$(grep -c 'kClientPinEntry' "$OUT/chromium-pin.log" 2>/dev/null)
	if [ "${n:-0}" -gt "$TYPED" ]; then
		TYPED=$n
		sleep 2
		DISPLAY=:99 xdotool type --delay 80 "$PIN" && DISPLAY=:99 xdotool key Return
		say "chromium-pin: typed the PIN (dialog $n)"
	fi
}

case_chromium_pin() {
	start_key pin || return
	start_xvfb
	DISPLAY=:99 setsid chromium "${chromium_flags[@]}" --user-data-dir=/tmp/chromium-pin \
		--vmodule='*webauthn*=1,*fido*=1,*device_event_log*=1' --window-size=1200,900 \
		"$(url chromium-pin 'uv=required&prf=1&prfmc=results')" >"$OUT/chromium-pin.log" 2>&1 &
	ON_TICK=type_pin_when_asked wait_done chromium-pin $! $CASE_SECONDS
	stop_key
}

case_firefox_pin() {
	start_key pin || return
	firefox_pin_autoconfig
	firefox_profile /tmp/ff-pin
	setsid firefox-esr --headless --no-remote --profile /tmp/ff-pin \
		"$(url firefox-pin 'uv=required&disc=0&prf=1&prfmc=enabled&prfagain=0')" >"$OUT/firefox-pin.log" 2>&1 &
	wait_done firefox-pin $! $CASE_SECONDS
	stop_key
}

# The Playwright step of docs/ci.md, with its shell steps: start vkey with
# --ready-file, wait for the file, run the Playwright script (testdata/node,
# playwright-core from npm) against Debian's chromium. The page reports its
# steps as in the other cases; the script's own verdict is the step
# "script".
case_playwright() {
	local ready=/tmp/vkey.ready dev rc
	rm -f "$ready"
	nohup "$S/vkey" run --transport uhid --presence auto --ephemeral \
		--ready-file "$ready" > "$OUT/playwright-vkey.log" 2>&1 &
	local pid=$!
	for i in $(seq 100); do [ -s "$ready" ] && break; sleep 0.1; done
	if [ ! -s "$ready" ]; then
		report playwright script false "vkey did not write its ready file"
		kill $pid; wait $pid 2>/dev/null
		return
	fi
	dev=$(cat "$ready"); say "playwright: vkey is on $dev"
	# DEBUG=pw:browser: Chromium's own log (--vmodule) in playwright.log.
	(cd "$S/node" && DEBUG=pw:browser VKEY_CHROMIUM=/usr/bin/chromium \
		VKEY_CHROMIUM_ARGS="${chromium_flags[*]} --vmodule=*webauthn*=1,*fido*=1,*device_event_log*=1" \
		VKEY_TIMEOUT_MS=$(( CASE_SECONDS * 1000 / 2 )) \
		timeout "$CASE_SECONDS" node playwright_passkey.mjs) > "$OUT/playwright.log" 2>&1
	rc=$?
	if [ $rc = 0 ]; then
		report playwright script true ""
	else
		report playwright script false "playwright_passkey.mjs exited $rc: $(tail -n1 "$OUT/playwright.log" | tr -d "\"\\\\")"
	fi
	kill $pid; wait $pid 2>/dev/null
	for _ in $(seq 100); do [ -e /dev/hidraw0 ] || break; sleep 0.05; done
}

# with_allow IN OUT CREDID: the RP's request options IN with allowCredentials
# naming CREDID, as the RP would send them for that user.
with_allow() {
	python3 -c 'import json, sys
o = json.load(open(sys.argv[1]))
o["publicKey"]["allowCredentials"] = [{"type": "public-key", "id": sys.argv[3]}]
json.dump(o, open(sys.argv[2], "w"))' "$1" "$2" "$3"
}

# stop_a_after_key_b: once the page reported its key-b step, stop key a
# (unplug it) and tell the page.
A_PID=
stop_a_after_key_b() {
	[ -n "$A_PID" ] || return 0
	grep -q '"case": "chromium-two-keys".*"step": "key-b"' "$OUT/reports.jsonl" 2>/dev/null || return 0
	kill "$A_PID"; wait "$A_PID" 2>/dev/null; A_PID=
	# Tell the page only once key a's hidraw node is gone and Chromium's
	# device watcher has had a second to see it: a request begun while
	# Chromium still lists key a goes to a vanishing device, and Chromium
	# then waits out the page's 20 s (seen once in three boots under load).
	local node; node=$(cat /tmp/ready-ta 2>/dev/null)
	for _ in $(seq 100); do [ -n "$node" ] && [ -e "$node" ] || break; sleep 0.05; done
	sleep 1
	echo '{}' > "$S/rp/a-stopped.json"
	say "chromium-two-keys: key a stopped"
}

# Two keys and a relying party: key a wants a touch nobody gives, key b
# answers by itself. The kit (vkey webauthn) registers on key b; Chromium
# registers with the RP's options and signs in with the kit's credential,
# which only key b holds; then key a is stopped and Chromium signs in with
# key b alone; the kit signs in last. Every
# response goes to the Go test, which verifies them all with go-webauthn.
case_chromium_two_keys() {
	local origin=http://localhost:8080 id
	"$S/vkey" run --transport uhid --presence touch --ephemeral --name a --ready-file /tmp/ready-ta >"$OUT/key-a.log" 2>&1 &
	A_PID=$!
	"$S/vkey" run --transport uhid --presence auto --ephemeral --name b --ready-file /tmp/ready-tb >"$OUT/key-b.log" 2>&1 &
	local pb=$!
	for _ in $(seq 200); do [ -s /tmp/ready-ta ] && [ -s /tmp/ready-tb ] && break; sleep 0.05; done
	say "keys a on $(cat /tmp/ready-ta) and b on $(cat /tmp/ready-tb)"
	if timeout 30 "$S/vkey" webauthn create --device b --origin $origin < "$S/rp/create-kit.json" > "$OUT/kit-create.json" 2>>"$OUT/kit.log"; then
		report chromium-two-keys kit-create true ""
	else
		report chromium-two-keys kit-create false "vkey webauthn create --device b failed: $(tail -n1 "$OUT/kit.log" | tr -d "\"\\\\")"
	fi
	id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$OUT/kit-create.json" 2>/dev/null)
	with_allow "$S/rp/get-b-template.json" "$S/rp/get-b.json" "$id"
	with_allow "$S/rp/get-kit-template.json" "$S/rp/get-kit.json" "$id"
	with_allow "$S/rp/get-b-alone-template.json" "$S/rp/get-b-alone.json" "$id"
	setsid chromium --headless=new "${chromium_flags[@]}" --user-data-dir=/tmp/chromium-two-keys \
		--vmodule='*webauthn*=1,*fido*=1,*device_event_log*=1' \
		"$(url chromium-two-keys 'rp=1')" >"$OUT/chromium-two-keys.log" 2>&1 &
	ON_TICK=stop_a_after_key_b wait_done chromium-two-keys $! $CASE_SECONDS
	if timeout 30 "$S/vkey" webauthn get --device b --origin $origin < "$S/rp/get-kit.json" > "$OUT/kit-get.json" 2>>"$OUT/kit.log"; then
		report chromium-two-keys kit-get true ""
	else
		report chromium-two-keys kit-get false "vkey webauthn get --device b failed: $(tail -n1 "$OUT/kit.log" | tr -d "\"\\\\")"
	fi
	[ -n "$A_PID" ] && kill "$A_PID"
	kill $pb; wait $A_PID $pb 2>/dev/null; A_PID=
	for _ in $(seq 100); do [ -e /dev/hidraw0 ] || break; sleep 0.05; done
}

# report CASE STEP OK DETAIL: a report like the page's, for the cases the
# script runs itself.
report() {
	printf '{"case": "%s", "step": "%s", "ok": %s, "detail": {"error": "%s"}}\n' "$1" "$2" "$3" "$4" >> "$OUT/reports.jsonl"
	say "$1 $2: $3 $4"
}

# touch_once approve|deny NAME: answer the key's next presence request, as
# `vkey touch` from another terminal would.
touch_once() {
	local flag=; [ "$1" = deny ] && flag=--deny
	for _ in $(seq 300); do
		"$S/vkey" touch $flag --name "$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# pam-u2f: pamu2fcfg registers through libfido2's enumeration, and
# pamtester authenticates through pam_u2f.so with a touch, then fails when
# the touch is refused.
case_pam_u2f() {
	local name=pam
	"$S/vkey" run --transport uhid --presence touch --ephemeral --name $name --ready-file /tmp/ready-pam >>"$OUT/vkey.log" 2>&1 &
	local pid=$!
	for _ in $(seq 200); do [ -s /tmp/ready-pam ] && break; sleep 0.05; done
	local tp
	touch_once approve $name & tp=$!
	if timeout 60 pamu2fcfg -u root -o pam://vkey -i pam://vkey > /tmp/u2f_keys 2>"$OUT/pam.log"; then
		report pam-u2f register true ""
	else
		report pam-u2f register false "pamu2fcfg failed: $(tail -n1 "$OUT/pam.log")"
	fi
	wait $tp
	cat > /etc/pam.d/vkey-test <<PAM
auth required pam_u2f.so authfile=/tmp/u2f_keys origin=pam://vkey appid=pam://vkey
account required pam_permit.so
PAM
	touch_once approve $name & tp=$!
	if timeout 60 pamtester vkey-test root authenticate >>"$OUT/pam.log" 2>&1; then
		report pam-u2f authenticate true ""
	else
		report pam-u2f authenticate false "pamtester failed with a touch"
	fi
	wait $tp
	touch_once deny $name & tp=$!
	if timeout 60 pamtester vkey-test root authenticate >>"$OUT/pam.log" 2>&1; then
		report pam-u2f denied false "pamtester succeeded although the touch was refused"
	else
		report pam-u2f denied true ""
	fi
	wait $tp
	kill $pid; wait $pid 2>/dev/null
}

# two keys: each its own hidraw node and serial; fido2-token -L lists both;
# a credential of one is unknown to the other.
case_two_keys() {
	local a b
	for n in a b; do
		"$S/vkey" run --transport uhid --presence auto --ephemeral --name key$n --ready-file /tmp/ready-$n >>"$OUT/vkey.log" 2>&1 &
		eval "pid_$n=$!"
	done
	for _ in $(seq 200); do [ -s /tmp/ready-a ] && [ -s /tmp/ready-b ] && break; sleep 0.05; done
	a=$(cat /tmp/ready-a); b=$(cat /tmp/ready-b)
	if [ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]; then report two-keys devices true ""; else report two-keys devices false "ready files: '$a' '$b'"; fi
	local list; list=$(timeout 20 fido2-token -L)
	echo "$list" > "$OUT/two-keys.log"
	if echo "$list" | grep -q "^$a:" && echo "$list" | grep -q "^$b:"; then report two-keys list true ""; else report two-keys list false "fido2-token -L: $list"; fi
	local sa sb
	sa=$(grep -h HID_UNIQ "/sys/class/hidraw/${a#/dev/}/device/uevent"); sb=$(grep -h HID_UNIQ "/sys/class/hidraw/${b#/dev/}/device/uevent")
	if [ -n "$sa" ] && [ "$sa" != "$sb" ]; then report two-keys serials true ""; else report two-keys serials false "serials '$sa' '$sb'"; fi
	"$S/vkey" devices >> "$OUT/two-keys.log" 2>&1
	if grep -q keya "$OUT/two-keys.log" && grep -q keyb "$OUT/two-keys.log"; then report two-keys vkey-devices true ""; else report two-keys vkey-devices false "vkey devices: $(tr '\n' ' ' < "$OUT/two-keys.log")"; fi
	printf '%s\ntwo.example\nalice\n%s\n' "$(head -c32 /dev/urandom | base64)" "$(head -c16 /dev/urandom | base64)" > /tmp/cparam
	if timeout 30 fido2-cred -M -i /tmp/cparam "$a" es256 | timeout 10 fido2-cred -V -o /tmp/cred2 es256; then
		{ head -c32 /dev/urandom | base64; echo two.example; head -n1 /tmp/cred2; } > /tmp/aparam
		if timeout 30 fido2-assert -G -i /tmp/aparam "$a" >/dev/null 2>>"$OUT/two-keys.log"; then
			if timeout 30 fido2-assert -G -i /tmp/aparam "$b" >/dev/null 2>>"$OUT/two-keys.log"; then
				report two-keys own-credentials false "the other key signed with the first key's credential"
			else
				report two-keys own-credentials true ""
			fi
		else
			report two-keys own-credentials false "the key that made the credential does not sign with it"
		fi
	else
		report two-keys own-credentials false "fido2-cred -M on $a failed"
	fi
	kill $pid_a $pid_b; wait $pid_a $pid_b 2>/dev/null
	for _ in $(seq 100); do [ -e /dev/hidraw0 ] || break; sleep 0.05; done
}

# go-libfido2's tests (internal/libfido2test, built by the Go test with
# cgo), each against a fresh key on uhid that go-libfido2 finds by its own
# enumeration.
case_libfido2() {
	(cd /tmp && VKEY_BIN="$S/vkey" VKEY_LIBFIDO2_TRANSPORT=uhid timeout 240 \
		"$S/libfido2test.test" -test.v -test.count=1 > "$OUT/libfido2.log" 2>&1)
	for t in Info PIN MakeAndGet HMACSecret CredentialManagement LargeBlobs Reset; do
		if grep -q "^--- PASS: TestLibfido2$t " "$OUT/libfido2.log"; then
			report libfido2 "$t" true ""
		else
			report libfido2 "$t" false "see libfido2.log"
		fi
	done
}

say "guest ready"
# Warm the page cache: a browser's first start maps its 300 MB of code
# page by page over 9p, which under TCG took minutes (the second start of
# the same browser, a minute less). Reading the files in one sequential
# pass while the shell cases run costs seconds.
(
	for b in chromium firefox-esr; do
		{ grep -q "^${b%-esr}" "$S/cases" || { [ $b = chromium ] && grep -q '^playwright' "$S/cases"; }; } || continue
		d=/usr/lib/$b
		[ -d "$d" ] || continue
		find "$d" -type f -size +64k -exec cat {} + >/dev/null 2>&1
		ldd "$d/${b}" "$d/libxul.so" 2>/dev/null | awk '/=> \//{print $3}' | xargs -r cat >/dev/null 2>&1
	done
	say "browser files read"
) &
while read -r c; do
	[ -n "$c" ] || continue
	say "case $c"
	"case_${c//-/_}"
	say "case $c: done"
	# The kernel's log, kept with the others: uhid and hidraw report there
	# what no process sees (a full uhid output queue drops a client's
	# report with only "Output queue is full").
	dmesg >"$OUT/dmesg.log" 2>&1
done < "$S/cases"
[ -n "$XPID" ] && kill "$XPID"
say "all cases done"
exit 0
