// The portal's limits as a caller meets them: refusals that were not executed are
// retryable rate-limit errors, and the OAuth server's rotating refresh tokens drive a
// client's refresh function end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'b24-openlines';
import { rejectionOf, seed, usePortal } from './portal.mjs';

const ctx = usePortal();

test('past the request-rate limit, calls fail with QUERY_LIMIT_EXCEEDED, retryable, not delivered', async () => {
  await ctx.portal.admin('settings', { rateLimit: { enabled: true, burst: 5, drainPerSecond: 0.5 } });
  try {
    // No pacing and no retries: the caller meets the portal's limit itself.
    const client = Client.fromWebhook(ctx.portal.webhook, { limits: false, retry: false });
    const before = (await ctx.portal.messages()).length;
    const outcomes = await Promise.allSettled(Array.from({ length: 12 }, () => client.crmMessageAdd(seed)));
    const sent = outcomes.filter((o) => o.status === 'fulfilled').length;
    const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason);
    assert.ok(sent >= 4 && sent <= 6, `about the burst went through (${sent})`);
    assert.equal(sent + refused.length, 12);
    for (const e of refused) {
      assert.equal(e.code, 'QUERY_LIMIT_EXCEEDED');
      assert.equal(e.status, 503);
      assert.equal(e.kind, 'rateLimited');
      assert.equal(e.retryable, true, 'the portal did not execute it');
    }
    assert.equal((await ctx.portal.messages()).length, before + sent, 'only the accepted calls delivered');
  } finally {
    await ctx.portal.admin('settings', { rateLimit: { enabled: false } });
  }
});

test('a refresh function using the OAuth server keeps working as refresh tokens rotate', async () => {
  const { oauthUrl, clientId, clientSecret } = ctx.portal;
  assert.ok(oauthUrl, 'the portal prints its OAuth endpoint');
  const first = await ctx.portal.admin('tokens', { userId: 1, ttlSeconds: 3600 });
  let refreshToken = first.refreshToken;
  let grants = 0;
  const client = Client.fromToken({
    clientEndpoint: `${ctx.portal.url}/rest/`,
    accessToken: first.accessToken,
    refresh: async () => {
      grants += 1;
      const body = new URLSearchParams({ grant_type: 'refresh_token', client_id: clientId, client_secret: clientSecret, refresh_token: refreshToken });
      const answer = await (await fetch(oauthUrl, { method: 'POST', body })).json();
      refreshToken = answer.refresh_token; // single use: keep the new one
      return answer;
    },
  });
  for (let round = 0; round < 3; round += 1) {
    await ctx.portal.admin('tokens/expire', {}); // every token expires: the next call must refresh
    assert.equal(typeof (await client.crmMessageAdd(seed)), 'number');
  }
  assert.equal(grants, 3);
  assert.equal(client.refreshes, 3);
  const reuse = await fetch(`${oauthUrl}?${new URLSearchParams({ grant_type: 'refresh_token', client_id: clientId, client_secret: clientSecret, refresh_token: first.refreshToken })}`);
  assert.equal(reuse.status, 400, 'a used refresh token is refused');
  assert.equal((await reuse.json()).error, 'invalid_grant');
  assert.equal((await rejectionOf(Client.fromToken({ clientEndpoint: `${ctx.portal.url}/rest/`, accessToken: 'x' }).crmMessageAdd(seed))).code, 'invalid_token');
});
