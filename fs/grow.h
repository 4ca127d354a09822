/*
** Growing an array by doubling: every growable list in wsfs, wsctl and the
** audit library goes through here, so each keeps one line instead of a
** realloc dance of its own.
*/
#ifndef WSFS_GROW_H
#define WSFS_GROW_H

#include <stddef.h>

/* Doubles the capacity *CAP of the array *V of ELEM-byte items (to FIRST
** when empty). Returns 0, or -ENOMEM with *V untouched. */
int grow_array(void **v, size_t *cap, size_t elem, size_t first);

#endif
