import { MemoryFailureCounter } from '../../src/limits/failure-counter.js';
import { MemoryTokenStore } from '../../src/tokens/memory-token-store.js';
import { describeTokenStoreContract } from './token-store.contract.js';

describeTokenStoreContract('MemoryTokenStore', async () => {
  const store = new MemoryTokenStore();
  return { store, failures: new MemoryFailureCounter({ maxFailures: 2, windowSeconds: 60 }), cleanup: () => store.close() };
});
