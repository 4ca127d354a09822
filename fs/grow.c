/*
** Array growth shared by every library (see grow.h).  reallocarray checks
** the multiplication, so a huge count fails with ENOMEM instead of
** wrapping around to a small allocation.
*/
#include "grow.h"

#include <errno.h>
#include <stdlib.h>

int grow_array(void **v, size_t *cap, size_t elem, size_t first)
{
	size_t ncap = *cap ? *cap * 2 : first;
	void *nv = reallocarray(*v, ncap, elem);

	if (nv == NULL)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}
