// Storage for oidc-provider: registered clients and their registration access tokens are kept on
// disk (one JSON file each, written atomically), so a restart keeps every client_id a vendor has
// configured. Short-lived artefacts (sessions, interactions, codes, access tokens) stay in memory.
import fs from 'node:fs';
import path from 'node:path';

const PERSISTENT = new Set(['Client', 'RegistrationAccessToken', 'InitialAccessToken']);
const memory = new Map();

function safeName(id) {
  // ids are nanoids, UUID-derived client_ids or opaque tokens: keep them filename-safe anyway.
  return encodeURIComponent(String(id));
}

// Every unexpired record of one persistent model, e.g. every registered client (the
// registrations listing, oidc/registrations.mjs).
export function storedPayloads(dir, name) {
  const modelDir = path.join(dir, name);
  let files;
  try {
    files = fs.readdirSync(modelDir);
  } catch (err) {
    if (err.code === 'ENOENT') return [];
    throw err;
  }
  const payloads = [];
  for (const file of files.filter((name_) => name_.endsWith('.json'))) {
    let record;
    try {
      record = JSON.parse(fs.readFileSync(path.join(modelDir, file), 'utf8'));
    } catch (err) {
      if (err.code === 'ENOENT') continue; // removed meanwhile
      throw err;
    }
    if (record.expiresAt && record.expiresAt < Date.now()) continue;
    payloads.push(record.payload);
  }
  return payloads;
}

export function fileAdapterFor(dir) {
  return class FileAdapter {
    constructor(name) {
      this.name = name;
      this.persistent = PERSISTENT.has(name);
      this.dir = path.join(dir, name);
      if (this.persistent) fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    file(id) {
      return path.join(this.dir, `${safeName(id)}.json`);
    }

    read(id) {
      if (!this.persistent) return memory.get(this.key(id));
      try {
        return JSON.parse(fs.readFileSync(this.file(id), 'utf8'));
      } catch (err) {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      }
    }

    write(id, record) {
      if (!this.persistent) {
        memory.set(this.key(id), record);
        return;
      }
      const target = this.file(id);
      const tmp = `${target}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
      fs.renameSync(tmp, target);
    }

    remove(id) {
      if (!this.persistent) {
        memory.delete(this.key(id));
        return;
      }
      fs.rmSync(this.file(id), { force: true });
    }

    async upsert(id, payload, expiresIn) {
      const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
      this.write(id, { payload, expiresAt });
    }

    async find(id) {
      const record = this.read(id);
      if (!record) return undefined;
      if (record.expiresAt && record.expiresAt < Date.now()) {
        this.remove(id);
        return undefined;
      }
      return record.payload;
    }

    async findByUid(uid) {
      for (const [key, record] of memory) {
        if (key.startsWith(`${this.name}:`) && record.payload.uid === uid) return record.payload;
      }
      return undefined;
    }

    async findByUserCode(userCode) {
      for (const [key, record] of memory) {
        if (key.startsWith(`${this.name}:`) && record.payload.userCode === userCode) {
          return record.payload;
        }
      }
      return undefined;
    }

    async consume(id) {
      const record = this.read(id);
      if (record) {
        record.payload.consumed = Math.floor(Date.now() / 1000);
        this.write(id, record);
      }
    }

    async destroy(id) {
      this.remove(id);
    }

    async revokeByGrantId(grantId) {
      for (const [key, record] of memory) {
        if (key.startsWith(`${this.name}:`) && record.payload.grantId === grantId) {
          memory.delete(key);
        }
      }
    }
  };
}
