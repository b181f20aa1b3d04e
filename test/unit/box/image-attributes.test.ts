import { describe, expect, test } from 'vitest';
import { parseAttributeLists, unsortedAttributes } from '../../../src/box/image-attributes.js';

const LISTING = `debugfs 1.47.0 (5-Feb-2023)
debugfs: ea_list <18139>
debugfs: ea_list <18140>
Extended attributes:
  system.posix_acl_default (28) = 01 00 00 00 01 00 07 00
  system.posix_acl_access (28) = 01 00 00 00 01 00 07 00
debugfs: ea_list <18141>
Extended attributes:
  security.capability (20) = 01 00 00 02 00 20 00 00
debugfs: ea_list <18142>
Extended attributes:
  system.posix_acl_access (28) = 01 00
  trusted.SGI_ACL_FILE (64)
debugfs: ea_list <18143>
Extended attributes:
  user.b (1) = "x"
  user.a\u00e9 (1) = "y"
`;

describe('image attributes', () => {
  test('parses which attributes each inode has, in the order they are stored', () => {
    expect([...parseAttributeLists(LISTING)]).toEqual([
      [18140, ['system.posix_acl_default', 'system.posix_acl_access']],
      [18141, ['security.capability']],
      [18142, ['system.posix_acl_access', 'trusted.SGI_ACL_FILE']],
      [18143, ['user.b', 'user.a\u00e9']],
    ]);
  });

  test('picks the inodes stored out of name order, sorted; one attribute, sorted ones and unsafe names are left alone', () => {
    expect([...unsortedAttributes(parseAttributeLists(LISTING))]).toEqual([[18140, ['system.posix_acl_access', 'system.posix_acl_default']]]);
  });
});
