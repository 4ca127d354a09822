/*
** The checkpoint signing key (see keys.h).
**
** Creation must be safe against two daemons (or a daemon and wsctl)
** starting at once on a fresh state directory: both would generate a key,
** and if each went on signing with its own, half the checkpoints would fail
** verification.  Opening audit.key itself with O_EXCL settles who wins but
** lets the loser read a file the winner has not finished writing.  So the
** key is written whole into a private temporary file first and then
** published with link(2), which, like O_EXCL, fails if the name exists, but
** makes the complete file appear at once.  The loser removes its temporary
** file and loads the winner's key.
**
** The key's name goes into every signature line and into the key id, so it
** must not change when the host is renamed: once audit.pub exists and
** matches the key, the name is taken from it, and the hostname only names
** a key when it is created (or when audit.pub has gone missing).
**
** A key loaded from a bare PEM public key has no name.  It then accepts the
** name a signature line gives, and checks the key id against that name:
** the signature itself is what binds the note to the key.
*/
#include "keys.h"

#include "append.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#define PUB_LEN 32
#define SIG_LEN 64
#define ALG_ED25519 0x01
#define NAME_MAX_LEN 255
#define KEY_FILE "audit.key"
#define PUB_FILE "audit.pub"
/* A verifier line or a PEM public key is far smaller than this. */
#define PUBFILE_MAX 8192

struct audit_key {
	EVP_PKEY *pkey;
	int priv;
	int named;		/* 0 for a bare PEM public key */
	uint8_t pub[PUB_LEN];
	uint32_t id;
	char name[NAME_MAX_LEN + 1];
	char verifier[NAME_MAX_LEN + 64];
};

/* ---- the key id and verifier line --------------------------------------- */

static int key_id_for(const uint8_t pub[PUB_LEN], const char *name,
		      uint32_t *id)
{
	uint8_t buf[NAME_MAX_LEN + 2 + PUB_LEN], h[AUDIT_HASH_LEN];
	size_t n = strlen(name);
	int rc;

	if (n > NAME_MAX_LEN)
		return -EINVAL;
	memcpy(buf, name, n);
	buf[n] = '\n';
	buf[n + 1] = ALG_ED25519;
	memcpy(buf + n + 2, pub, PUB_LEN);
	rc = audit_sha256(buf, n + 2 + PUB_LEN, h);
	if (rc < 0)
		return rc;
	*id = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	      (uint32_t)h[2] << 8 | h[3];
	return 0;
}

uint32_t audit_key_id_for(const struct audit_key *k, const char *name)
{
	uint32_t id = 0;

	if (key_id_for(k->pub, name, &id) < 0)
		return 0;
	return id;
}

/* Names with '+', spaces or control bytes would break the line formats. */
static int name_valid(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	if (*p == '\0' || strlen(name) > NAME_MAX_LEN)
		return 0;
	for (; *p != '\0'; p++) {
		if (*p <= ' ' || *p == '+' || *p == 0x7f)
			return 0;
	}
	return 1;
}

static int key_set_name(struct audit_key *k, const char *name, int named)
{
	uint8_t alg_pub[1 + PUB_LEN];
	char b64[audit_b64_len(sizeof(alg_pub)) + 1];
	int rc;

	if (!name_valid(name))
		return -EINVAL;
	rc = key_id_for(k->pub, name, &k->id);
	if (rc < 0)
		return rc;
	alg_pub[0] = ALG_ED25519;
	memcpy(alg_pub + 1, k->pub, PUB_LEN);
	(void)audit_b64_encode(alg_pub, sizeof(alg_pub), b64);
	(void)snprintf(k->name, sizeof(k->name), "%s", name);
	(void)snprintf(k->verifier, sizeof(k->verifier), "%s+%08x+%s", name,
		       k->id, b64);
	k->named = named;
	return 0;
}

/* The default name: "<hostname>/wsfs", or "wsfs" with no hostname. */
static void default_name(char *buf, size_t len)
{
	const char *host = audit_hostname();

	(void)snprintf(buf, len, "%s%swsfs", host, *host ? "/" : "");
}

/* ---- building keys ------------------------------------------------------ */

static struct audit_key *key_wrap(EVP_PKEY *pkey, int priv)
{
	struct audit_key *k;
	size_t len = PUB_LEN;

	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519)
		return NULL;
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	if (EVP_PKEY_get_raw_public_key(pkey, k->pub, &len) != 1 ||
	    len != PUB_LEN) {
		free(k);
		return NULL;
	}
	k->pkey = pkey;
	k->priv = priv;
	return k;
}

void audit_key_free(struct audit_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

int audit_key_can_sign(const struct audit_key *k)
{
	return k->priv;
}

const char *audit_key_verifier(const struct audit_key *k)
{
	return k->verifier;
}

const char *audit_key_name(const struct audit_key *k)
{
	return k->named ? k->name : NULL;
}

uint32_t audit_key_id(const struct audit_key *k)
{
	return k->id;
}

int audit_key_same(const struct audit_key *a, const struct audit_key *b)
{
	return memcmp(a->pub, b->pub, PUB_LEN) == 0;
}

/* ---- verifier lines ----------------------------------------------------- */

int audit_key_parse_verifier(const char *line, struct audit_key **out,
			     char *err, size_t errlen)
{
	const char *plus1, *plus2, *end;
	char name[NAME_MAX_LEN + 1], idhex[9];
	uint8_t alg_pub[1 + PUB_LEN + 2];
	struct audit_key *k;
	EVP_PKEY *pkey;
	long n;

	end = line + strlen(line);
	while (end > line && (end[-1] == '\n' || end[-1] == '\r' ||
			      end[-1] == ' '))
		end--;
	plus1 = memchr(line, '+', (size_t)(end - line));
	plus2 = plus1 ? memchr(plus1 + 1, '+', (size_t)(end - plus1 - 1))
		      : NULL;
	if (plus2 == NULL || plus1 == line ||
	    (size_t)(plus1 - line) > NAME_MAX_LEN || plus2 - plus1 != 9) {
		audit_set_err(err, errlen, "not a verifier key line "
			      "(NAME+KEYID+KEY)");
		return -EINVAL;
	}
	memcpy(name, line, (size_t)(plus1 - line));
	name[plus1 - line] = '\0';
	memcpy(idhex, plus1 + 1, 8);
	idhex[8] = '\0';
	n = audit_b64_decode(plus2 + 1, (size_t)(end - plus2 - 1), alg_pub,
			     sizeof(alg_pub));
	if (n != 1 + PUB_LEN || alg_pub[0] != ALG_ED25519) {
		audit_set_err(err, errlen, "verifier key line does not hold "
			      "an Ed25519 key");
		return -EINVAL;
	}
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
					   alg_pub + 1, PUB_LEN);
	k = pkey ? key_wrap(pkey, 0) : NULL;
	if (k == NULL) {
		EVP_PKEY_free(pkey);
		audit_set_err(err, errlen, "cannot load the Ed25519 key");
		return -ENOMEM;
	}
	if (key_set_name(k, name, 1) < 0 ||
	    strtoul(idhex, NULL, 16) != k->id ||
	    strspn(idhex, "0123456789abcdef") != 8) {
		audit_key_free(k);
		audit_set_err(err, errlen, "verifier key line: the key id "
			      "does not match the name and key");
		return -EINVAL;
	}
	*out = k;
	return 0;
}

/* ---- files -------------------------------------------------------------- */

/* Reads a small file whole, NUL-terminated. */
static int read_small_file(const char *path, char *buf, size_t cap,
			   size_t *len)
{
	size_t n = 0;
	ssize_t r;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (n + 1 >= cap) {
			rc = -EFBIG;
			break;
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	(void)close(fd);
	buf[n] = '\0';
	*len = n;
	return rc;
}

static EVP_PKEY *pem_public(const char *buf, size_t len)
{
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	EVP_PKEY *pkey;

	if (bio == NULL)
		return NULL;
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return pkey;
}

static int load_pem_public(const char *file, const char *buf, size_t len,
			   struct audit_key **out, char *err, size_t errlen)
{
	char name[NAME_MAX_LEN + 1];
	EVP_PKEY *pkey = pem_public(buf, len);
	struct audit_key *k = pkey ? key_wrap(pkey, 0) : NULL;

	if (k == NULL) {
		EVP_PKEY_free(pkey);
		audit_set_err(err, errlen, "%s: not an Ed25519 public key",
			      file);
		return -EINVAL;
	}
	default_name(name, sizeof(name));
	if (key_set_name(k, name, 0) < 0) {
		audit_key_free(k);
		audit_set_err(err, errlen, "%s: cannot name the key", file);
		return -EINVAL;
	}
	*out = k;
	return 0;
}

int audit_key_load_public(const char *file, struct audit_key **out,
			  char *err, size_t errlen)
{
	char buf[PUBFILE_MAX];
	size_t len = 0;
	int rc;

	rc = read_small_file(file, buf, sizeof(buf), &len);
	if (rc < 0) {
		audit_set_err(err, errlen, "cannot read %s: %s", file,
			      strerror(-rc));
		return rc;
	}
	if (strstr(buf, "-----BEGIN") != NULL)
		return load_pem_public(file, buf, len, out, err, errlen);
	/* The first line: audit.pub holds just the one. */
	buf[strcspn(buf, "\n")] = '\0';
	rc = audit_key_parse_verifier(buf, out, err, errlen);
	if (rc < 0 && err != NULL && errlen > 0) {
		char why[200];

		(void)snprintf(why, sizeof(why), "%s", err);
		audit_set_err(err, errlen, "%s: %s", file, why);
	}
	return rc;
}

static int key_path(const char *state_dir, const char *file, char *buf,
		    size_t len)
{
	int n = snprintf(buf, len, "%s/keys%s%s", state_dir, file ? "/" : "",
			 file ? file : "");

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int read_private(const char *path, struct audit_key **out)
{
	EVP_PKEY *pkey;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	(void)fclose(f);
	*out = pkey ? key_wrap(pkey, 1) : NULL;
	if (*out == NULL) {
		EVP_PKEY_free(pkey);
		return -EINVAL;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes LEN bytes to a new file TMP (mode MODE), synced. */
static int write_new_file(const char *tmp, mode_t mode, const void *buf,
			  size_t len)
{
	int fd, rc;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 && errno == EEXIST) {
		/* Left by a crash of a process with our pid: ours to
		** replace, since a live one would be us. */
		(void)unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	}
	if (fd < 0)
		return -errno;
	rc = fchmod(fd, mode) < 0 ? -errno : 0;
	if (rc == 0)
		rc = write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		(void)unlink(tmp);
	return rc;
}

static int pem_private(EVP_PKEY *pkey, char **buf, long *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;

	if (bio == NULL)
		return -ENOMEM;
	if (PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
				     NULL) != 1) {
		BIO_free(bio);
		return -EIO;
	}
	*len = BIO_get_mem_data(bio, &data);
	*buf = malloc((size_t)*len);
	if (*buf != NULL)
		memcpy(*buf, data, (size_t)*len);
	BIO_free(bio);
	return *buf ? 0 : -ENOMEM;
}

/*
** Generates a key and publishes it as PATH unless someone else got there
** first; -EEXIST then, and the caller loads theirs.
*/
static int create_private(const char *path)
{
	char tmp[PATH_MAX];
	EVP_PKEY *pkey;
	char *pem = NULL;
	long len = 0;
	int rc;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path,
		     (long)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL)
		return -EIO;
	rc = pem_private(pkey, &pem, &len);
	EVP_PKEY_free(pkey);
	if (rc == 0)
		rc = write_new_file(tmp, 0600, pem, (size_t)len);
	if (pem != NULL)
		OPENSSL_cleanse(pem, (size_t)len);
	free(pem);
	if (rc < 0)
		return rc;
	rc = link(tmp, path) < 0 ? -errno : 0;
	(void)unlink(tmp);
	return rc;
}

static int make_keys_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Replaces audit.pub with K's verifier line (atomically, by rename). */
static int write_pub(const char *state_dir, const struct audit_key *k)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32], line[sizeof(k->verifier) + 1];
	int rc, n;

	rc = key_path(state_dir, PUB_FILE, path, sizeof(path));
	if (rc < 0)
		return rc;
	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	n = snprintf(line, sizeof(line), "%s\n", k->verifier);
	rc = write_new_file(tmp, 0644, line, (size_t)n);
	if (rc < 0)
		return rc;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		(void)unlink(tmp);
	}
	return rc;
}

/* Names K from audit.pub when that matches it; otherwise after the host,
** and (when WRITE) records that name in a fresh audit.pub. */
static int name_private(const char *state_dir, struct audit_key *k,
			int write)
{
	char path[PATH_MAX], name[NAME_MAX_LEN + 1];
	struct audit_key *pub = NULL;
	int rc;

	rc = key_path(state_dir, PUB_FILE, path, sizeof(path));
	if (rc < 0)
		return rc;
	if (audit_key_load_public(path, &pub, NULL, 0) == 0 && pub->named &&
	    audit_key_same(pub, k)) {
		rc = key_set_name(k, pub->name, 1);
		audit_key_free(pub);
		return rc;
	}
	audit_key_free(pub);
	default_name(name, sizeof(name));
	rc = key_set_name(k, name, 1);
	if (rc == 0 && write)
		rc = write_pub(state_dir, k);
	return rc;
}

static int load_or_create(const char *state_dir, int create,
			  struct audit_key **out, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int rc;

	if (key_path(state_dir, NULL, dir, sizeof(dir)) < 0 ||
	    key_path(state_dir, KEY_FILE, path, sizeof(path)) < 0) {
		audit_set_err(err, errlen, "state directory path %s is too "
			      "long", state_dir);
		return -ENAMETOOLONG;
	}
	rc = read_private(path, out);
	if (rc != -ENOENT || !create)
		goto done;
	rc = make_keys_dir(dir);
	if (rc < 0) {
		audit_set_err(err, errlen, "cannot create %s: %s", dir,
			      strerror(-rc));
		return rc;
	}
	rc = create_private(path);
	if (rc < 0 && rc != -EEXIST) {
		audit_set_err(err, errlen, "cannot create %s: %s", path,
			      strerror(-rc));
		return rc;
	}
	/* Ours or the winner's of a race: either way, the one on disk. */
	rc = read_private(path, out);
done:
	if (rc == -EINVAL)
		audit_set_err(err, errlen, "%s is not an Ed25519 private key",
			      path);
	else if (rc < 0)
		audit_set_err(err, errlen, "cannot read %s: %s", path,
			      strerror(-rc));
	return rc;
}

int audit_key_load(const char *state_dir, int create, struct audit_key **out,
		   char *err, size_t errlen)
{
	struct audit_key *k = NULL;
	int rc;

	rc = load_or_create(state_dir, create, &k, err, errlen);
	if (rc < 0)
		return rc;
	rc = name_private(state_dir, k, create);
	if (rc < 0) {
		audit_set_err(err, errlen, "cannot write %s/keys/" PUB_FILE
			      ": %s", state_dir, strerror(-rc));
		audit_key_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

/* ---- signing ------------------------------------------------------------ */

int audit_key_sign(const struct audit_key *k, const void *msg, size_t len,
		   uint8_t sig[SIG_LEN])
{
	EVP_MD_CTX *ctx;
	size_t siglen = SIG_LEN;
	int ok;

	if (!k->priv)
		return -EIO;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -EIO;
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	     EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 &&
	     siglen == SIG_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int audit_key_verify(const struct audit_key *k, const void *msg, size_t len,
		     const uint8_t sig[SIG_LEN])
{
	EVP_MD_CTX *ctx;
	int ok;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return 0;
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	     EVP_DigestVerify(ctx, sig, SIG_LEN, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}
