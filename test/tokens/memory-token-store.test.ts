import { MemoryTokenStore } from '../../src/tokens/memory-token-store.js';
import { describeTokenStoreContract } from './token-store.contract.js';

describeTokenStoreContract('MemoryTokenStore', async () => {
  const store = new MemoryTokenStore();
  return { store, cleanup: () => store.close() };
});
