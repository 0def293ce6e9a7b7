// An OpenID-certified provider (npm `oidc-provider`, pinned by scripts/oidc-interop.sh) for the portal's sign-in
// interop test (app-http/tests/it/certified_provider.rs). Not our code: we only configure it.
//
// Environment: PORT; REDIRECT_URI (the portal's callback); SECRET (the two secret clients' secret, made at run
// time by the test); CLIENT_JWKS (the public JWK set of the private_key_jwt client); ACCOUNTS (JSON: account id ->
// group names).
//
// Three clients, one per way a customer's app registration differs from the default:
//   fctr-basic  client_secret_basic, ID tokens RS256
//   fctr-post   client_secret_post, ID tokens EdDSA
//   fctr-pkjwt  private_key_jwt (ES256 assertion), ID tokens ES256
// `groups` is a scope claim: with the provider's default `conformIdTokenClaims`, the code flow's ID token does not
// carry it and only the userinfo endpoint does (what made every agent "Not authorized" before).
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';

const port = Number(process.env.PORT);
const redirect = process.env.REDIRECT_URI;
const secret = process.env.SECRET;
const accounts = JSON.parse(process.env.ACCOUNTS);
const clientJwks = JSON.parse(process.env.CLIENT_JWKS);

const jwk = (type, opts, alg) => ({
  ...generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }),
  alg,
  use: 'sig',
});
const keys = [
  jwk('rsa', { modulusLength: 2048 }, 'RS256'),
  jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  jwk('ed25519', {}, 'EdDSA'),
];

const base = { redirect_uris: [redirect], grant_types: ['authorization_code'], response_types: ['code'] };
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    { ...base, client_id: 'fctr-basic', client_secret: secret, token_endpoint_auth_method: 'client_secret_basic' },
    {
      ...base,
      client_id: 'fctr-post',
      client_secret: secret,
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'EdDSA',
    },
    {
      ...base,
      client_id: 'fctr-pkjwt',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      id_token_signed_response_alg: 'ES256',
      jwks: clientJwks,
    },
  ],
  jwks: { keys },
  claims: { openid: ['sub'], groups: ['groups'], profile: ['name'] },
  scopes: ['openid', 'profile', 'groups'],
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'],
    clientAuthSigningAlgValues: ['RS256', 'ES256'],
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    if (!(id in accounts)) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, name: id, groups: accounts[id] }) };
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
