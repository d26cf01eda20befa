const api = (path, opts = {}) => fetch('/api/v1' + path, { headers: { 'content-type': 'application/json' }, ...opts })
  .then(async r => { const body = r.status === 204 ? null : await r.json(); if (!r.ok) throw new Error(body.error.message); return body; });
const $ = id => document.getElementById(id);
const show = (id, on) => { $(id).hidden = !on; };
async function refresh() {
  $('msg').textContent = '';
  const me = await api('/auth/whoami');
  ['enroll', 'login', 'signed-in'].forEach(id => show(id, false));
  if (!me.username) { $('who').textContent = 'This device is not connected through the Mistborn VPN.'; return; }
  $('who').textContent = `Profile “${me.profile}” of ${me.username}` + (me.mfa ? ' (needs a second factor)' : '');
  if (!me.totp_confirmed && me.mfa) {
    const e = await api('/auth/totp/enroll', { method: 'POST', body: '{}' });
    $('qr').src = 'data:image/png;base64,' + e.qr_png_base64; $('secret').textContent = e.secret; show('enroll', true);
  } else if (me.mfa && !me.verified) { show('login', true); }
  else if (me.mfa) { show('signed-in', true); }
}
$('confirm-form').onsubmit = async ev => { ev.preventDefault();
  try { const r = await api('/auth/totp/confirm', { method: 'POST', body: JSON.stringify({ code: $('confirm-code').value }) });
    $('recovery').textContent = 'Recovery codes (keep them safe, each works once):\n' + r.recovery_codes.join('\n'); show('recovery', true);
    show('login', true); } catch (e) { $('msg').textContent = e.message; } };
$('login-form').onsubmit = async ev => { ev.preventDefault();
  try { await api('/auth/login', { method: 'POST', body: JSON.stringify({ code: $('code').value }) }); $('code').value = ''; await refresh(); }
  catch (e) { $('msg').textContent = e.message; } };
$('logout').onclick = async () => { try { await api('/auth/logout', { method: 'POST' }); await refresh(); } catch (e) { $('msg').textContent = e.message; } };
refresh().catch(e => { $('msg').textContent = e.message; });
