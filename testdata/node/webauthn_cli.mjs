// @simplewebauthn/server (npm) verifies what `vkey webauthn` makes: the
// relying party's options go as JSON to `vkey webauthn create|get
// --ephemeral --state DIR` (the binary in $VKEY_BIN), the response back to
// verifyRegistrationResponse / verifyAuthenticationResponse. Attestation
// none and packed, ES256 and EdDSA, discoverable or not, with and without a
// PIN (user verification required); then the browser's error names. Exits
// non-zero, with the reason, on any failure.
//
// With VKEY_TPM_DEVICE (the pty of a `vkey run --keys tpm --attestation
// tpm`) and VKEY_TPM_ROOT (its attestation root, PEM) set, it also
// registers through `vkey webauthn create --device` with attestation
// "direct", checks fmt "tpm" with the root as the only tpm trust anchor
// (SettingsService.setRootCertificates), and signs in with `vkey webauthn
// get --device`; without them it says it skips that case.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SettingsService,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';

const ORIGIN = 'https://example.com';
const RPID = 'example.com';
const BIN = process.env.VKEY_BIN;
const tmp = mkdtempSync(join(tmpdir(), 'vkey-node-'));

function check(ok, what) {
  if (!ok) {
    console.error('FAIL: ' + what);
    process.exit(1);
  }
}

function vkey(ceremony, options, state, { pin, origin = ORIGIN } = {}) {
  const env = { ...process.env };
  delete env.VKEY_PIN;
  if (pin) env.VKEY_PIN = pin;
  const p = spawnSync(BIN, ['webauthn', ceremony, '--ephemeral', '--state', state, '--origin', origin, '--json'], {
    input: JSON.stringify(options), env, timeout: 60000,
  });
  const out = JSON.parse(p.stdout.toString() || '{}');
  if (p.status !== 0) {
    check(out.error, 'a failure comes with a JSON error: ' + p.stderr);
    return { error: out.error.name };
  }
  return { response: out };
}

async function flow(n, attestationType, alg, resident, pin) {
  const state = join(tmp, 'key' + n);
  const uv = pin ? 'required' : 'discouraged';
  const options = await generateRegistrationOptions({
    rpName: 'Example', rpID: RPID, userName: 'alice', attestationType,
    supportedAlgorithmIDs: [alg],
    authenticatorSelection: { residentKey: resident ? 'required' : 'discouraged', userVerification: uv },
  });
  const reg = vkey('create', options, state, { pin });
  check(!reg.error, 'registration failed: ' + reg.error);
  const verified = await verifyRegistrationResponse({
    response: reg.response, expectedChallenge: options.challenge, expectedOrigin: ORIGIN, expectedRPID: RPID,
    requireUserVerification: !!pin,
  });
  check(verified.verified, 'registration not verified');
  const info = verified.registrationInfo;
  check(info.fmt === (attestationType === 'none' ? 'none' : 'packed'), 'fmt ' + info.fmt);
  check(info.userVerified === !!pin, 'UV flag ' + info.userVerified);
  const credential = info.credential;
  let counter = credential.counter;
  for (let i = 0; i < 2; i++) {
    const login = await generateAuthenticationOptions({
      rpID: RPID, userVerification: uv,
      allowCredentials: resident ? [] : [{ id: credential.id, transports: credential.transports }],
    });
    const got = vkey('get', login, state, { pin });
    check(!got.error, 'sign-in failed: ' + got.error);
    const v = await verifyAuthenticationResponse({
      response: got.response, expectedChallenge: login.challenge, expectedOrigin: ORIGIN, expectedRPID: RPID,
      credential: { ...credential, counter }, requireUserVerification: !!pin,
    });
    check(v.verified && v.authenticationInfo.newCounter > counter, 'sign-in not verified or counter did not increase');
    counter = v.authenticationInfo.newCounter;
  }
  console.log(`ok attestation=${attestationType} alg=${alg} resident=${resident} pin=${!!pin}`);
  return credential;
}

let n = 0;
for (const attestationType of ['none', 'direct']) {
  for (const alg of [-7, -8]) {
    for (const resident of [false, true]) {
      for (const pin of [undefined, '4321']) {
        await flow(++n, attestationType, alg, resident, pin);
      }
    }
  }
}

// Failures, named as a browser names them.
const state = join(tmp, 'neg');
const cred = await flow(++n, 'none', -7, false, undefined);
const again = await generateRegistrationOptions({
  rpName: 'Example', rpID: RPID, userName: 'alice', excludeCredentials: [{ id: cred.id }],
  authenticatorSelection: { residentKey: 'discouraged', userVerification: 'discouraged' },
});
check(vkey('create', again, join(tmp, 'key' + n)).error === 'InvalidStateError', 'excluded credential');
check(vkey('create', again, state, { origin: 'https://evil.example.net' }).error === 'SecurityError', 'wrong origin');
const login = await generateAuthenticationOptions({ rpID: RPID, allowCredentials: [{ id: cred.id }] });
check(vkey('get', login, join(tmp, 'empty')).error === 'NotAllowedError', 'no matching credential');
const uvRequired = await generateRegistrationOptions({
  rpName: 'Example', rpID: RPID, userName: 'bob', authenticatorSelection: { userVerification: 'required' },
});
check(vkey('create', uvRequired, join(tmp, 'nopin')).error === 'NotAllowedError', 'UV required without PIN');

// tpm attestation from a TPM-backed vkey, verified to its root.
function vkeyDevice(ceremony, options, device) {
  const p = spawnSync(BIN, ['webauthn', ceremony, '--device', device, '--origin', ORIGIN, '--json'], {
    input: JSON.stringify(options), timeout: 60000,
  });
  check(p.status === 0, `vkey webauthn ${ceremony} --device: exit ${p.status} ${p.stdout} ${p.stderr}`);
  return JSON.parse(p.stdout.toString());
}

const device = process.env.VKEY_TPM_DEVICE;
const rootFile = process.env.VKEY_TPM_ROOT;
if (!device || !rootFile) {
  console.log('skip attestation=tpm: VKEY_TPM_DEVICE and VKEY_TPM_ROOT are not set (no swtpm)');
} else {
  // ES256, and RS256 and PS256 (issue 13: RSA-2048 keys in the TPM, whose
  // pubArea names no scheme, as the ECC keys).
  for (const alg of [-7, -257, -37]) {
    SettingsService.setRootCertificates({ identifier: 'tpm', certificates: [readFileSync(rootFile, 'utf8')] });
    const options = await generateRegistrationOptions({
      rpName: 'Example', rpID: RPID, userName: 'carol', attestationType: 'direct', supportedAlgorithmIDs: [alg],
      authenticatorSelection: { residentKey: 'discouraged', userVerification: 'discouraged' },
    });
    const response = vkeyDevice('create', options, device);
    const expect = {
      response, expectedChallenge: options.challenge, expectedOrigin: ORIGIN, expectedRPID: RPID,
      requireUserVerification: false, supportedAlgorithmIDs: [alg],
    };
    // verifyAttestationTPM: pubArea is the credential key, certInfo (magic,
    // type, extraData, name) and its signature by the AIK, the AIK
    // certificate's requirements, and the chain to the tpm root set above.
    const verified = await verifyRegistrationResponse(expect);
    check(verified.verified, 'tpm registration not verified');
    check(verified.registrationInfo.fmt === 'tpm', 'fmt ' + verified.registrationInfo.fmt + ', want tpm');
    // The same statement with another root as the only anchor (Apple's
    // WebAuthn root, which the library ships) is refused: the chain is checked.
    // (With no tpm root at all the library skips the chain.)
    SettingsService.setRootCertificates({
      identifier: 'tpm', certificates: SettingsService.getRootCertificates({ identifier: 'apple' }),
    });
    const otherRoot = await verifyRegistrationResponse(expect).then(() => null, (e) => e);
    check(otherRoot, 'tpm statement verified with another root as the only tpm trust anchor');
    const credential = verified.registrationInfo.credential;
    const login = await generateAuthenticationOptions({
      rpID: RPID, userVerification: 'discouraged', allowCredentials: [{ id: credential.id }],
    });
    const got = vkeyDevice('get', login, device);
    const v = await verifyAuthenticationResponse({
      response: got, expectedChallenge: login.challenge, expectedOrigin: ORIGIN, expectedRPID: RPID,
      credential, requireUserVerification: false,
    });
    check(v.verified, 'tpm sign-in not verified');
    console.log(`ok attestation=tpm alg=${alg} ` + '(verifyAttestationTPM and chain to vkey\'s root; without the root: ' + otherRoot.message + ')');
  }
}
console.log('OK');
